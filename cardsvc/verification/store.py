"""Database-backed client store and audit sink (the API's production services).

:func:`append_events` is the one way rows enter the audit table: it locks the head row, chains the
events onto the last hash (RFC 6962 prefixes, see :mod:`.audit`) and inserts them, inside the
caller's transaction — so a workflow's change and its audit rows commit together or not at all.
:func:`append_event` appends one now; :func:`record_event` defers it to just before the commit.
:func:`append_card_change` is the audit hook of card lifecycle changes (CLI and desk pages alike).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from sqlmodel import Session

from cardsvc.errors import Conflict, NotFound
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.verification_models import ApiClient, AuditLogRow
from cardsvc.verification.audit import AuditEvent, AuditRow, Outcome, canonical_bytes, leaf_hash, node_hash
from cardsvc.verification.db import BATCHED, BEFORE_COMMIT, Database
from cardsvc.verification.prepared import PreparedRead, PreparedWrite
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import ClientRecord


def append_event(session: Session, event: AuditEvent) -> AuditRow:
    """Chain ``event`` onto the log in this transaction (after any deferred ones, keeping order)."""
    _append_deferred(session)
    return append_events(session, [event])[0]


class CardChange(Protocol):
    """What a card lifecycle change tells the audit log (``issuance.lifecycle.LifecycleChange``)."""

    @property
    def action(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def card_number(self) -> str: ...


def append_card_change(session: Session, change: CardChange) -> None:
    """Chain a card lifecycle change (``card.<action>``) onto the log in the change's transaction."""
    append_event(session, AuditEvent(
        event_type=f"card.{change.action}", actor=change.actor, subject=change.card_number,
        outcome=Outcome.ok, reason=change.action, timestamp=dt.datetime.now(dt.UTC)))


_DEFERRED = "cardsvc.audit.deferred"


def record_event(session: Session, event: AuditEvent) -> None:
    """Chain ``event`` onto the log: now, or in a group-committed batch just before its commit.

    Same guarantee either way — the rows commit with the workflow's change or not at all — but a
    batch locks the head row once and inserts all its rows with one executemany.
    """
    if not session.info.get(BATCHED):
        append_event(session, event)
        return
    pending: list[AuditEvent] | None = session.info.get(_DEFERRED)
    if pending is None:
        pending = session.info[_DEFERRED] = []
        session.info.setdefault(BEFORE_COMMIT, []).append(_append_deferred)
    pending.append(event)


def _append_deferred(session: Session) -> None:
    events: list[AuditEvent] = session.info.pop(_DEFERRED, [])
    if events:
        append_events(session, events)


# The append's three statements on the DBAPI cursor (same statements as the repo's, less CPU).
_LOCK_HEAD = PreparedRead(repo.LOCK_HEAD)
_INSERT_AUDIT = PreparedWrite(repo.INSERT_AUDIT)
_MOVE_HEAD = PreparedWrite(repo.MOVE_HEAD)


def append_events(session: Session, events: Sequence[AuditEvent]) -> list[AuditRow]:
    """Chain ``events`` (in order) onto the log in this transaction: one head lock, one insert."""
    head = _LOCK_HEAD.first(session, count=len(events))
    if head is None:
        raise NotFound("the audit head row is missing (migration 0003 not applied?)")
    seq, prev_hash = int(head.size) - len(events), bytes(head.last_hash)
    rows: list[AuditRow] = []
    for offset, event in enumerate(events):
        row_hash = node_hash(prev_hash, leaf_hash(canonical_bytes(seq + offset, event)))
        rows.append(AuditRow(seq=seq + offset, event=event, prev_hash=prev_hash, row_hash=row_hash))
        prev_hash = row_hash
    _INSERT_AUDIT.execute_many(session, [_columns(row) for row in rows])
    _MOVE_HEAD.execute(session, last_hash=prev_hash)
    return rows


def _columns(row: AuditRow) -> dict[str, Any]:
    event = row.event
    return {"seq": row.seq, "event_type": event.event_type, "actor": event.actor, "subject": event.subject,
            "outcome": event.outcome.value, "reason": event.reason, "ts": event.timestamp,
            "prev_hash": row.prev_hash, "row_hash": row.row_hash}


def row_from_db(row: AuditLogRow) -> AuditRow:
    """A stored row as the chain verifier reads it (no validation: tampered rows must still load)."""
    event = object.__new__(AuditEvent)
    for name, value in (("event_type", row.event_type), ("actor", row.actor), ("subject", row.subject),
                        ("outcome", _outcome(row.outcome)), ("reason", row.reason),
                        ("timestamp", row.ts)):
        object.__setattr__(event, name, value)
    return AuditRow(seq=row.seq, event=event, prev_hash=bytes(row.prev_hash), row_hash=bytes(row.row_hash))


def _outcome(value: str) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:
        return Outcome.nok  # an edited outcome still loads; its hash will not match


def read_audit(session: Session) -> list[AuditRow]:
    return [row_from_db(r) for r in repo.audit_rows(session)]


class DbAuditSink:
    """:class:`~cardsvc.verification.audit.AuditSink` over the ``audit_log`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, event: AuditEvent) -> AuditRow:
        return await self._db.run(lambda s: append_event(s, event))

    async def rows(self) -> Sequence[AuditRow]:
        return await self._db.run(read_audit)


def _record(client: ApiClient | Any) -> ClientRecord:
    """From the ORM object or a Core row (same attribute names)."""
    return ClientRecord(client_id=client.client_id, label=client.label, role=Role(client.role),
                        token_hash=bytes(client.token_hash), created_at=client.created_at,
                        service_point_id=client.service_point_id, partner_base_id=client.partner_base_id,
                        revoked=client.revoked)


def _row(record: ClientRecord) -> ApiClient:
    return ApiClient(client_id=record.client_id, label=record.label, role=record.role.value,
                     token_hash=record.token_hash, created_at=record.created_at,
                     service_point_id=record.service_point_id, partner_base_id=record.partner_base_id,
                     revoked=record.revoked)


class DbClientStore:
    """:class:`~cardsvc.verification.tokens.ClientStore` over the ``api_client`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, client_id: str) -> ClientRecord | None:
        return await self._db.run_read(lambda s: self._get(s, client_id))

    @staticmethod
    def _get(session: Session, client_id: str) -> ClientRecord | None:
        row = repo.client_row(session, client_id=client_id)
        return None if row is None else _record(row)

    async def add(self, record: ClientRecord) -> None:
        await self._db.run(lambda s: self.add_sync(s, record))

    @staticmethod
    def add_sync(session: Session, record: ClientRecord) -> None:
        if repo.get_client(session, client_id=record.client_id) is not None:
            raise Conflict(f"client {record.client_id} exists")
        repo.add_client(session, client=_row(record))

    async def revoke(self, client_id: str) -> ClientRecord:
        return await self._db.run(lambda s: self.revoke_sync(s, client_id))

    async def add_recorded(self, record: ClientRecord, event: AuditEvent) -> None:
        """Add the client and chain its audit row in one transaction (both or neither)."""

        def work(session: Session) -> None:
            self.add_sync(session, record)
            append_event(session, event)

        await self._db.run(work)

    async def revoke_recorded(self, client_id: str, event: AuditEvent) -> ClientRecord:
        """Revoke the client and chain its audit row in one transaction (both or neither)."""

        def work(session: Session) -> ClientRecord:
            record = self.revoke_sync(session, client_id)
            append_event(session, event)
            return record

        return await self._db.run(work)

    @staticmethod
    def revoke_sync(session: Session, client_id: str) -> ClientRecord:
        return _record(repo.revoke_client(session, client_id=client_id))

    async def list(self) -> Sequence[ClientRecord]:
        return await self._db.run(lambda s: [_record(c) for c in repo.list_clients(s)])
