"""The privacy-request queue: file a member's request, list the pending ones, record the answer.

Functions take an open session (the caller owns the transaction) so answering a request and doing
what it asks (withdraw or erase) commit together. The answer is due :data:`ANSWER_WITHIN` after the
request was received.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

from sqlalchemy import select
from sqlmodel import Session, col

from cardsvc.errors import Conflict, InvalidRecord, NotFound
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.privacy_models import NOTE_MAX, PrivacyRequest, RequestKind, RequestStatus

ANSWER_WITHIN = dt.timedelta(days=15)


def due_at(request: PrivacyRequest) -> dt.datetime:
    return request.received_at + ANSWER_WITHIN


def file_request(session: Session, *, kind: RequestKind, member: str, partner: str | None,
                 actor: str, at: dt.datetime) -> PrivacyRequest:
    if (kind is RequestKind.consent_withdrawal) != (partner is not None):
        raise InvalidRecord("a consent withdrawal names a partner base; an erasure does not", field="partner")
    request = PrivacyRequest(kind=kind.value, member_public_id=member, partner_code=partner,
                             received_at=at, received_by=actor)
    session.add(request)
    session.flush()
    return request


def pending(session: Session) -> list[PrivacyRequest]:
    query = (select(PrivacyRequest).where(col(PrivacyRequest.status) == RequestStatus.pending.value)
             .order_by(col(PrivacyRequest.received_at), col(PrivacyRequest.id)))
    return list(session.scalars(query))


def recent_answers(session: Session, *, limit: int = 50) -> list[PrivacyRequest]:
    query = (select(PrivacyRequest).where(col(PrivacyRequest.status) != RequestStatus.pending.value)
             .order_by(col(PrivacyRequest.handled_at).desc()).limit(limit))
    return list(session.scalars(query))


def open_request(session: Session, request_id: int) -> PrivacyRequest:
    request = session.get(PrivacyRequest, request_id)
    if request is None:
        raise NotFound(f"no privacy request {request_id}")
    if request.status != RequestStatus.pending.value:
        raise Conflict(f"privacy request {request_id} was already answered", reason="answered")
    return request


def answer(request: PrivacyRequest, *, status: RequestStatus, actor: str, at: dt.datetime,
           note: str) -> None:
    if len(note) > NOTE_MAX:
        raise InvalidRecord(f"the note is longer than {NOTE_MAX} characters", field="note")
    request.status, request.handled_by, request.handled_at = status.value, actor, at
    request.note = note.strip()


class _InOpenTransaction:
    """Stands in for a session whose transaction is already open: ``begin()`` joins it."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __enter__(self) -> _InOpenTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin(self) -> AbstractContextManager[None]:
        return nullcontext()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def joined(session: Session) -> SessionFactory:
    """A session factory for a service whose work must commit with ``session``'s transaction."""
    return lambda: cast(Session, _InOpenTransaction(session))
