"""Repo functions for staff users, sessions and form nonces: keyword-only, flush, never commit."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlmodel import Session, col, select

from cardsvc.registry.staff_models import FormNonce, StaffSession, StaffUser


def user_by_name(session: Session, *, username: str) -> StaffUser | None:
    return session.exec(select(StaffUser).where(StaffUser.username == username)).first()


def user_by_id(session: Session, *, user_id: int) -> StaffUser | None:
    return session.get(StaffUser, user_id)


def all_users(session: Session) -> list[StaffUser]:
    return list(session.exec(select(StaffUser).order_by(col(StaffUser.username))))


def add(session: Session, *, row: StaffUser | StaffSession | FormNonce) -> None:
    session.add(row)
    session.flush()


def session_by_hash(session: Session, *, token_hash: bytes) -> StaffSession | None:
    return session.get(StaffSession, token_hash)


def delete_session(session: Session, *, token_hash: bytes) -> None:
    session.execute(delete(StaffSession).where(col(StaffSession.token_hash) == token_hash))
    session.flush()


def delete_sessions_of(session: Session, *, user_id: int) -> None:
    session.execute(delete(StaffSession).where(col(StaffSession.user_id) == user_id))
    session.flush()


def delete_sessions_before(session: Session, *, created: dt.datetime, seen: dt.datetime) -> None:
    """Drop sessions past their absolute (``created``) or idle (``seen``) expiry."""
    stale = (col(StaffSession.created_at) < created) | (col(StaffSession.last_seen_at) < seen)
    session.execute(delete(StaffSession).where(stale))
    session.flush()


def nonce(session: Session, *, value: str) -> FormNonce | None:
    return session.get(FormNonce, value)
