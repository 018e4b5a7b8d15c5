"""Registry tables and schemas: organisations, members, categories, transfers, consents, events.

Schema family per entity: ``*Base`` (shared fields) → ``*Create`` (input) → table model → ``*Public``
(what leaves the registry, masked). Personal fields live only in sealed columns (``*_sealed``) plus
their blind index (``*_index``); see :mod:`cardsvc.registry.pii`. The integer ``id`` is the foreign-key
target for other tables; ``public_id`` is the stable, opaque pseudonym used in logs, audit and URLs.
Alembic owns the schema (``migrations/versions``); these classes must match it (a test checks).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Dialect, LargeBinary, String, Table, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware UTC timestamp")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:  # noqa: ARG002
        if value is None:
            return None
        stamp: dt.datetime = value
        return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for prebuilt statements on the hot paths."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_public_id() -> str:
    """A random 128-bit opaque member reference (32 hex characters)."""
    return uuid.uuid4().hex


class OrgKind(StrEnum):
    district_federation = "district_federation"
    town_federation = "town_federation"
    park_federation = "park_federation"
    industry_federation = "industry_federation"
    enterprise_union = "enterprise_union"
    village_joint_union = "village_joint_union"
    market_joint_union = "market_joint_union"
    industry_joint_union = "industry_joint_union"
    project_union = "project_union"


FEDERATION_KINDS = frozenset(
    {OrgKind.district_federation, OrgKind.town_federation, OrgKind.park_federation,
     OrgKind.industry_federation}
)


class MemberStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    left = "left"
    erased = "erased"


# --- organisations -----------------------------------------------------------------------------


class OrganisationBase(SQLModel):
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=100)
    kind: OrgKind = Field(sa_type=String(32))
    uscc: str | None = Field(default=None, max_length=18)
    contact: str | None = Field(default=None, max_length=100)


class OrganisationCreate(OrganisationBase):
    parent_code: str | None = None


class Organisation(OrganisationBase, table=True):
    __tablename__ = "organisation"

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)


class OrganisationPublic(OrganisationBase):
    parent_code: str | None = None


# --- categories --------------------------------------------------------------------------------


class Category(SQLModel, table=True):
    """Member categories (劳模, 先进职工, 一线职工, 农民工 …): rows, seeded by the first migration."""

    __tablename__ = "member_category_kind"
    __table_args__ = (
        UniqueConstraint("code", name="uq_member_category_kind_code"),
        UniqueConstraint("label", name="uq_member_category_kind_label"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32)
    label: str = Field(max_length=32)


class MemberCategory(SQLModel, table=True):
    __tablename__ = "member_category"

    member_id: int = Field(foreign_key="member.id", primary_key=True, ondelete="CASCADE")
    category_id: int = Field(foreign_key="member_category_kind.id", primary_key=True)


# --- members -----------------------------------------------------------------------------------


_PERSONAL_FIELDS = frozenset({"name", "id_number", "phone", "gender", "birth_date"})


class MemberBase(SQLModel):
    name: str = Field(max_length=30)
    status: MemberStatus = Field(default=MemberStatus.active, sa_type=String(16))
    joined_on: dt.date | None = None

    def __repr_args__(self) -> Sequence[tuple[str | None, Any]]:
        """``repr``/``str`` (logs, tracebacks, rich) leave out personal fields, even masked ones."""
        return [(k, v) for k, v in super().__repr_args__() if k not in _PERSONAL_FIELDS]


class MemberCreate(MemberBase):
    """Plain input for one member; parsed fields only (see :mod:`cardsvc.registry.identity`)."""

    id_number: str
    phone: str | None = None
    org_code: str
    categories: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"MemberCreate(org_code={self.org_code!r}, <personal fields redacted>)"


class Member(MemberBase, table=True):
    __tablename__ = "member"
    __table_args__ = (UniqueConstraint("id_index", name="uq_member_id_index"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=new_public_id, max_length=32, unique=True, index=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    gender: str | None = Field(default=None, max_length=8)
    birth_date: dt.date | None = None
    id_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    id_index: bytes | None = Field(default=None, sa_type=LargeBinary(32))
    phone_sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    phone_index: bytes | None = Field(default=None, sa_type=LargeBinary(32), index=True)
    key_version: int | None = None
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    erased_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class MemberPublic(MemberBase):
    """What leaves the registry: personal fields masked for the audience."""

    public_id: str
    id_number: str
    phone: str
    gender: str | None
    birth_date: dt.date | None
    org_code: str
    categories: tuple[str, ...]


# --- history -----------------------------------------------------------------------------------


class MembershipTransfer(SQLModel, table=True):
    """关系接转: one row per move between organisations."""

    __tablename__ = "membership_transfer"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    from_org_id: int = Field(foreign_key="organisation.id")
    to_org_id: int = Field(foreign_key="organisation.id")
    transferred_on: dt.date
    reason: str = Field(default="", max_length=200)
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Consent(SQLModel, table=True):
    """A member's consent to share (masked) data with a partner base, and its withdrawal."""

    __tablename__ = "consent"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    partner: str = Field(max_length=64)
    purpose: str = Field(max_length=100)
    granted_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    withdrawn_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class MemberEvent(SQLModel, table=True):
    """Pseudonymous registry audit: what happened to which member; never personal data."""

    __tablename__ = "member_event"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    action: str = Field(max_length=32)
    detail: str = Field(default="", max_length=200)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
