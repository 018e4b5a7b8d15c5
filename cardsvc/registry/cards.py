"""Card tables: batches, card-number counters, cards (journal state + lifecycle status), history, prints.

A card row is born ``reserved`` (a number bound to a member) and walks the issuance journal
``reserved → writing → written → verified → issued``; ``voided`` (number burned, no chip written)
and ``spoiled`` (chip unusable) are the side exits. Once issued, ``status`` carries the lifecycle
(active, suspended, lost, revoked). ``live`` is true while the row still stands for the member's
one card; a partial unique index allows at most one live row per member, and ``uid_hash`` (a keyed
hash of the chip UID, never the UID) is unique, so one chip carries at most one card.
Alembic migration ``0002_cards`` creates these tables; the classes must match it (a test checks).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from cardsvc.registry.models import UtcDateTime, utcnow


class JournalState(StrEnum):
    reserved = "reserved"
    writing = "writing"
    written = "written"
    verified = "verified"
    issued = "issued"
    voided = "voided"
    spoiled = "spoiled"


MIDDLE_STATES = frozenset({JournalState.writing, JournalState.written, JournalState.verified})
FINAL_STATES = frozenset({JournalState.issued, JournalState.voided, JournalState.spoiled})


class CardStatus(StrEnum):
    """Lifecycle of an issued card."""

    active = "active"
    suspended = "suspended"
    lost = "lost"
    revoked = "revoked"


class Batch(SQLModel, table=True):
    __tablename__ = "card_batch"

    id: int | None = Field(default=None, primary_key=True)
    label: str = Field(max_length=64, unique=True, index=True)
    profile: str = Field(max_length=64)
    key_version: int
    prefix: str = Field(max_length=6)
    year: int
    number_length: int = 12
    valid_days: int
    selection: str = Field(default="", max_length=400)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class BatchMember(SQLModel, table=True):
    """The members a batch was created for (frozen at creation: nobody is lost on the way)."""

    __tablename__ = "card_batch_member"

    batch_id: int = Field(foreign_key="card_batch.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True, index=True)


class CardNumberCounter(SQLModel, table=True):
    """The next sequence number per issuer prefix and year; bumped in the reserving transaction."""

    __tablename__ = "card_number_counter"

    prefix: str = Field(max_length=6, primary_key=True)
    year: int = Field(primary_key=True)
    next_seq: int = 1


class Card(SQLModel, table=True):
    __tablename__ = "card"
    __table_args__ = (
        Index("uq_card_live_member", "member_id", unique=True,
              sqlite_where=text("live"), postgresql_where=text("live")),
        UniqueConstraint("uid_hash", name="uq_card_uid_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    card_number: str = Field(max_length=16, unique=True, index=True)
    batch_id: int = Field(foreign_key="card_batch.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    profile: str = Field(max_length=64)
    key_version: int
    state: JournalState = Field(default=JournalState.reserved, sa_type=String(16), index=True)
    status: CardStatus | None = Field(default=None, sa_type=String(16))
    live: bool = True
    uid_hash: bytes | None = Field(default=None, sa_type=LargeBinary(32))
    station: str | None = Field(default=None, max_length=100)
    credential: bytes | None = Field(default=None, sa_type=LargeBinary)
    issued_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    expires_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    replaces_id: int | None = Field(default=None, foreign_key="card.id")
    reason: str = Field(default="", max_length=200)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CardEvent(SQLModel, table=True):
    """History of a card: every journal arrow and lifecycle change (no personal data)."""

    __tablename__ = "card_event"

    id: int | None = Field(default=None, primary_key=True)
    card_id: int = Field(foreign_key="card.id", index=True)
    action: str = Field(max_length=32)
    from_state: str = Field(default="", max_length=16)
    to_state: str = Field(default="", max_length=16)
    actor: str = Field(default="", max_length=100)
    detail: str = Field(default="", max_length=200)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PrintRecord(SQLModel, table=True):
    """One printed face or exported QR image of an issued card; later ones are reprints."""

    __tablename__ = "card_print"

    id: int | None = Field(default=None, primary_key=True)
    card_id: int = Field(foreign_key="card.id", index=True)
    kind: str = Field(max_length=16)
    target: str = Field(default="", max_length=200)
    reprint: bool = False
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
