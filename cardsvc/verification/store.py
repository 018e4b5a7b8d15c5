"""Database-backed client store and audit sink (the API's production services).

:func:`append_event` is the one way a row enters the audit table: it locks the head row, chains the
event onto the last hash (RFC 6962 prefixes, see :mod:`.audit`) and inserts it, inside the caller's
transaction — so a workflow's change and its audit row commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from cardsvc.errors import Conflict
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.verification_models import ApiClient, AuditLogRow
from cardsvc.verification.audit import AuditEvent, AuditRow, Outcome, canonical_bytes, leaf_hash, node_hash
from cardsvc.verification.db import Database
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import ClientRecord


def append_event(session: Session, event: AuditEvent) -> AuditRow:
    """Chain ``event`` onto the log in this transaction."""
    seq, prev_hash = repo.lock_audit_head(session)
    row_hash = node_hash(prev_hash, leaf_hash(canonical_bytes(seq, event)))
    repo.add_audit_row(session, row={
        "seq": seq, "event_type": event.event_type, "actor": event.actor, "subject": event.subject,
        "outcome": event.outcome.value, "reason": event.reason, "ts": event.timestamp,
        "prev_hash": prev_hash, "row_hash": row_hash,
    })
    return AuditRow(seq=seq, event=event, prev_hash=prev_hash, row_hash=row_hash)


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
        return await self._db.run(lambda s: _record(repo.revoke_client(s, client_id=client_id)))

    async def list(self) -> Sequence[ClientRecord]:
        return await self._db.run(lambda s: [_record(c) for c in repo.list_clients(s)])
