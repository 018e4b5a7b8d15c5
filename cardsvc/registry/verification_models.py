"""Verification tables: API clients, the audit log, service points, recuperation, challenges, SUN counters.

No table here holds personal data: members are referenced by ``member.id`` (foreign key) and cards
by card number. Alembic migration ``0003_verification`` creates these tables; the classes must
match it. Concurrency-relevant shapes:

* ``audit_head`` — one row (id 1) holding the log size and last chain hash; appenders lock it with
  an ``UPDATE`` first, so the chain never forks on SQLite or PostgreSQL;
* ``sun_counter`` — last accepted SDMReadCtr per card, moved only by a compare-and-set ``UPDATE``;
* ``programme.used`` — the check-in quota counter, moved only by ``UPDATE … WHERE used < quota``;
* ``checkin`` — unique per (programme, member) and per (programme, idempotency key);
* ``challenge`` — a nonce consumed by ``UPDATE … WHERE used_at IS NULL AND expires_at > now``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from cardsvc.registry.models import UtcDateTime, utcnow


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_client"

    client_id: str = Field(max_length=12, primary_key=True)
    label: str = Field(max_length=80)
    role: str = Field(max_length=16)
    token_hash: bytes = Field(sa_type=LargeBinary(32))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    service_point_id: str | None = Field(default=None, max_length=64)
    partner_base_id: str | None = Field(default=None, max_length=64)
    revoked: bool = False


class AuditLogRow(SQLModel, table=True):
    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    event_type: str = Field(max_length=48)
    actor: str = Field(max_length=64)
    subject: str = Field(max_length=64, index=True)
    outcome: str = Field(max_length=8)
    reason: str = Field(max_length=48)
    ts: dt.datetime = Field(sa_type=UtcDateTime)
    prev_hash: bytes = Field(sa_type=LargeBinary(32))
    row_hash: bytes = Field(sa_type=LargeBinary(32))


class AuditHead(SQLModel, table=True):
    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int = 0
    last_hash: bytes = Field(sa_type=LargeBinary(32))


class ServicePoint(SQLModel, table=True):
    __tablename__ = "service_point"

    code: str = Field(max_length=64, primary_key=True)
    name: str = Field(max_length=100)
    org_code: str | None = Field(default=None, max_length=32)


class ServiceItem(SQLModel, table=True):
    __tablename__ = "service_item"

    code: str = Field(max_length=32, primary_key=True)
    name: str = Field(max_length=50)
    sort: int = 0


class ServiceRecord(SQLModel, table=True):
    __tablename__ = "service_record"
    __table_args__ = (UniqueConstraint("client_id", "idempotency_key", name="uq_service_record_idem"),)

    id: int | None = Field(default=None, primary_key=True)
    service_point_code: str = Field(foreign_key="service_point.code", max_length=64, index=True)
    item_code: str = Field(foreign_key="service_item.code", max_length=32)
    member_id: int = Field(foreign_key="member.id", index=True)
    card_number: str = Field(max_length=16)
    client_id: str = Field(max_length=12)
    idempotency_key: str | None = Field(default=None, max_length=64)
    month: str = Field(max_length=7, index=True)
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PartnerBase(SQLModel, table=True):
    __tablename__ = "partner_base"

    code: str = Field(max_length=64, primary_key=True)
    name: str = Field(max_length=100)
    city: str = Field(default="", max_length=50)


class Programme(SQLModel, table=True):
    """A recuperation programme at one base: dates, who is eligible, and the quota counter."""

    __tablename__ = "programme"

    code: str = Field(max_length=64, primary_key=True)
    base_code: str = Field(foreign_key="partner_base.code", max_length=64, index=True)
    name: str = Field(max_length=100)
    starts_on: dt.date
    ends_on: dt.date
    categories: str = Field(default="", max_length=200)  # comma-separated category codes
    named_list: bool = False  # eligibility by programme_member rows instead of categories
    quota: int
    used: int = 0


class ProgrammeMember(SQLModel, table=True):
    __tablename__ = "programme_member"

    programme_code: str = Field(foreign_key="programme.code", max_length=64, primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)


class Checkin(SQLModel, table=True):
    __tablename__ = "checkin"
    __table_args__ = (
        UniqueConstraint("programme_code", "member_id", name="uq_checkin_member"),
        UniqueConstraint("programme_code", "idempotency_key", name="uq_checkin_idem"),
    )

    id: int | None = Field(default=None, primary_key=True)
    programme_code: str = Field(foreign_key="programme.code", max_length=64, index=True)
    member_id: int = Field(foreign_key="member.id")
    card_number: str = Field(max_length=16)
    client_id: str = Field(max_length=12)
    idempotency_key: str = Field(max_length=64)
    source: str = Field(default="online", max_length=8)
    checked_in_at: dt.datetime = Field(sa_type=UtcDateTime)
    checked_out_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class Challenge(SQLModel, table=True):
    __tablename__ = "challenge"

    nonce: bytes = Field(sa_type=LargeBinary(16), primary_key=True)
    client_id: str = Field(max_length=12)
    created_at: dt.datetime = Field(sa_type=UtcDateTime)
    expires_at: dt.datetime = Field(sa_type=UtcDateTime, index=True)
    used_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class SunCounter(SQLModel, table=True):
    __tablename__ = "sun_counter"

    card_number: str = Field(max_length=16, primary_key=True)
    last: int = Field(default=-1)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


