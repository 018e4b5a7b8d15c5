"""The hash-chained audit log: every verification, service record, check-in and lifecycle change.

Hashing follows RFC 6962 §2.1's domain separation:

* leaf hash ``L_i = SHA-256(0x00 ‖ canonical CBOR of row i)`` — the row's sequence number, event type,
  actor, subject, outcome, reason code and timestamp (integer microseconds since the epoch, UTC);
* chain ``H_i = SHA-256(0x01 ‖ H_{i-1} ‖ L_i)`` with ``H_{-1}`` = 32 zero bytes; each row stores
  ``prev_hash = H_{i-1}`` and ``row_hash = H_i``, so editing, dropping or reordering a row breaks
  every later link and :func:`verify_chain` names the first bad row;
* checkpoints: :func:`tree_head` is the RFC 6962 Merkle Tree Hash over all leaf hashes, publishable
  and comparable with any RFC 6962 implementation.

Rows never hold personal data: actor is a client id, subject a card number or a pseudonymous member
id; values shaped like ID numbers or phone numbers are refused when an event is built.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import cbor2

from cardsvc.errors import AuditIntegrityError, InvalidRecord
from cardsvc.logging import redact

GENESIS_HASH = bytes(32)
EMPTY_TREE_HEAD = hashlib.sha256(b"").digest()

_EVENT_TYPE_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,3}")
_REASON_RE = re.compile(r"[a-z0-9_]{1,48}")
_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{0,64}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Outcome(StrEnum):
    ok = "ok"
    nok = "nok"
    check = "check"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, by whom, to what, and how it ended — never who the member is."""

    event_type: str
    actor: str
    subject: str
    outcome: Outcome
    reason: str
    timestamp: datetime

    def __post_init__(self) -> None:
        if not _EVENT_TYPE_RE.fullmatch(self.event_type) or len(self.event_type) > 48:
            raise InvalidRecord("dotted lowercase name, e.g. verify.qr", field="event_type")
        if not _REASON_RE.fullmatch(self.reason):
            raise InvalidRecord("lowercase reason code", field="reason")
        for name in ("actor", "subject"):
            _check_name(name, getattr(self, name))
        if self.timestamp.tzinfo is None:
            raise InvalidRecord("timestamp must be timezone-aware", field="timestamp")


def _check_name(field: str, value: str) -> None:
    if not _NAME_RE.fullmatch(value):
        raise InvalidRecord("0-64 characters of A-Z a-z 0-9 _ . : -", field=field)
    if redact(value) != value:
        raise InvalidRecord("looks like an ID number or phone; audit rows hold no personal data",
                            field=field, reason="personal_data")


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One stored row: the event, its position, and its link in the chain."""

    seq: int
    event: AuditEvent
    prev_hash: bytes
    row_hash: bytes


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def canonical_bytes(seq: int, event: AuditEvent) -> bytes:
    """The row as deterministic (RFC 8949 §4.2 core) CBOR — the input of its leaf hash.

    A map of seven text keys, written directly in their deterministic order (the encoded keys
    sorted bytewise: shorter first). Byte for byte what ``cbor2.dumps(..., canonical=True)`` gives
    (a differential test holds it to that) at a fraction of its cost on the verification hot path.
    """
    return b"".join((
        _MAP_OF_7,
        _TS, _cbor_int(_micros(event.timestamp)),
        _SEQ, _cbor_int(seq),
        _TYPE, _cbor_text(event.event_type),
        _ACTOR, _cbor_text(event.actor),
        _REASON, _cbor_text(event.reason),
        _OUTCOME, _cbor_text(event.outcome.value),
        _SUBJECT, _cbor_text(event.subject),
    ))


_MAP_OF_7 = b"\xa7"
_TS, _SEQ, _TYPE, _ACTOR, _REASON, _OUTCOME, _SUBJECT = (
    cbor2.dumps(key) for key in ("ts", "seq", "type", "actor", "reason", "outcome", "subject"))


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes((major << 5 | value,))
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes((major << 5 | extra,)) + value.to_bytes(size, "big")
    raise ValueError("integer too large for the audit row encoding")


def _cbor_int(value: int) -> bytes:
    return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    return _cbor_head(3, len(data)) + data


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def row_leaf_hash(row: AuditRow) -> bytes:
    return leaf_hash(canonical_bytes(row.seq, row.event))


def chain_row(previous: AuditRow | None, event: AuditEvent) -> AuditRow:
    """The row that follows ``previous`` (or starts the log) for ``event``."""
    seq = 0 if previous is None else previous.seq + 1
    prev_hash = GENESIS_HASH if previous is None else previous.row_hash
    row_hash = node_hash(prev_hash, leaf_hash(canonical_bytes(seq, event)))
    return AuditRow(seq=seq, event=event, prev_hash=prev_hash, row_hash=row_hash)


def verify_chain(rows: Sequence[AuditRow], *, start_hash: bytes = GENESIS_HASH, start_seq: int = 0) -> None:
    """Check every link; raise :class:`AuditIntegrityError` naming the first bad row's index.

    Checks, per row ``i``: (1) its sequence number is ``start_seq + i``; (2) its ``prev_hash`` is the
    previous row's hash (``start_hash`` for the first); (3) its ``row_hash`` is recomputed from its
    content. Verifying from a checkpoint passes that row's hash and next sequence number.
    """
    expected_prev = start_hash
    for index, row in enumerate(rows):
        if row.seq != start_seq + index:
            raise AuditIntegrityError(f"sequence {row.seq}, expected {start_seq + index}", index=index)
        if not hmac.compare_digest(row.prev_hash, expected_prev):
            raise AuditIntegrityError("previous-hash link broken", index=index)
        recomputed = node_hash(expected_prev, row_leaf_hash(row))
        if not hmac.compare_digest(row.row_hash, recomputed):
            raise AuditIntegrityError("row content does not match its hash", index=index)
        expected_prev = row.row_hash


def tree_head(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash over leaf hashes (an unpaired right node moves up unchanged)."""
    if not leaf_hashes:
        return EMPTY_TREE_HEAD
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The log's size, Merkle tree head and last chain hash at one moment."""

    size: int
    tree_head: bytes
    last_hash: bytes


def checkpoint(rows: Sequence[AuditRow]) -> Checkpoint:
    """A checkpoint over ``rows`` (which must be the whole log, verified or about to be)."""
    last = rows[-1].row_hash if rows else GENESIS_HASH
    return Checkpoint(size=len(rows), tree_head=tree_head([row_leaf_hash(r) for r in rows]), last_hash=last)


class AuditSink(Protocol):
    """Where audit rows are appended (in memory now; a table next)."""

    async def append(self, event: AuditEvent) -> AuditRow: ...

    async def rows(self) -> Sequence[AuditRow]: ...


class InMemoryAuditSink:
    """An :class:`AuditSink` in a list; appends are serialised so the chain never forks."""

    def __init__(self) -> None:
        self._rows: list[AuditRow] = []
        self._lock = threading.Lock()

    async def append(self, event: AuditEvent) -> AuditRow:
        with self._lock:
            row = chain_row(self._rows[-1] if self._rows else None, event)
            self._rows.append(row)
            return row

    async def rows(self) -> Sequence[AuditRow]:
        return tuple(self._rows)
