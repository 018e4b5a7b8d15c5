"""Staff tables for the web pages: users (argon2id hash, lock-out state), sessions, form nonces.

Migration ``0004_staff`` creates them; the classes must match it (a test checks). No table stores a
session id or a password: sessions are keyed by ``SHA-256(session id)``, passwords by their argon2id
hash. ``role`` holds a :class:`cardsvc.verification.roles.Role` value; ``service_point_id`` /
``partner_base_id`` bind a service-point or partner user to one place (as API clients are bound).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from cardsvc.registry.models import UtcDateTime, utcnow


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"
    __table_args__ = (UniqueConstraint("username", name="uq_staff_user_username"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    display_name: str = Field(max_length=80)
    role: str = Field(max_length=16)
    service_point_id: str | None = Field(default=None, max_length=64)
    partner_base_id: str | None = Field(default=None, max_length=64)
    password_hash: str = Field(max_length=255)
    disabled: bool = False
    failed_logins: int = 0
    locked_until: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class StaffSession(SQLModel, table=True):
    __tablename__ = "staff_session"

    token_hash: bytes = Field(sa_type=LargeBinary(32), primary_key=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class FormNonce(SQLModel, table=True):
    """A submitted form: its one-time nonce and where the first submission led (double submits)."""

    __tablename__ = "web_form_nonce"

    nonce: str = Field(max_length=64, primary_key=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    used_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    result: str = Field(max_length=500)
