"""API client tokens: random, shown once, stored as a hash, revocable.

A token reads ``cs_<id>_<secret>``: ``id`` is 12 lowercase hex characters, public (it names the client
in logs and audit rows); ``secret`` is ``secrets.token_urlsafe(32)`` — 256 random bits.

Stored hash: SHA-256 over a domain tag and the whole token, not HMAC with a pepper and not a slow
password hash. The secret has 256 bits of entropy, so a leaked hash cannot be brute-forced and a slow
KDF would only cost milliseconds on every request; a pepper would add a second secret to distribute
to every worker and rotate, and buys nothing against guessing at this entropy. Hashing the id with the
secret binds a hash to its client row: moving a hash to another row does not make a working token.
Verification recomputes the hash and compares with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from cardsvc.errors import AuthenticationRequired, Conflict, InvalidRecord, NotFound
from cardsvc.logging import get_logger
from cardsvc.verification.audit import AuditEvent, AuditSink, InMemoryAuditSink
from cardsvc.verification.roles import Role

log = get_logger(__name__)

TOKEN_PREFIX = "cs"  # noqa: S105 - a public marker, not a secret
_HASH_TAG = b"cardsvc client token v1\x00"
_TOKEN_RE = re.compile(r"cs_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")
_PLACE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_DUMMY_HASH = bytes(32)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One API client as the store keeps it. ``label`` is an operator's note, never personal data."""

    client_id: str
    label: str
    role: Role
    token_hash: bytes = field(repr=False)
    created_at: datetime
    service_point_id: str | None = None
    partner_base_id: str | None = None
    revoked: bool = False

    def __post_init__(self) -> None:
        _check_binding(self.role, self.service_point_id, self.partner_base_id)


def _check_binding(role: Role, service_point_id: str | None, partner_base_id: str | None) -> None:
    """service_point clients name exactly one service point, partners one base, others neither."""
    want_point, want_base = role is Role.service_point, role is Role.partner
    if want_point != (service_point_id is not None):
        raise InvalidRecord("required for service_point clients only", field="service_point_id",
                            reason="binding_needed" if want_point else "binding_not_taken")
    if want_base != (partner_base_id is not None):
        raise InvalidRecord("required for partner clients only", field="partner_base_id",
                            reason="binding_needed" if want_base else "binding_not_taken")
    for name, value in (("service_point_id", service_point_id), ("partner_base_id", partner_base_id)):
        if value is not None and not _PLACE_ID_RE.fullmatch(value):
            raise InvalidRecord("1-64 characters of A-Z a-z 0-9 _ . : -", field=name, reason="place_code",
                                value=value)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new client and its token. The token exists only here: show it once, then drop it."""

    client: ClientRecord
    token: str = field(repr=False)


class ClientStore(Protocol):
    """Where client records live (in memory now; the registry's table next)."""

    async def get(self, client_id: str) -> ClientRecord | None: ...

    async def add(self, record: ClientRecord) -> None:
        """Store a new client; :class:`Conflict` if the id exists."""

    async def revoke(self, client_id: str) -> ClientRecord:
        """Mark revoked and return the updated record; :class:`NotFound` if absent."""

    async def list(self) -> Sequence[ClientRecord]: ...

    async def add_recorded(self, record: ClientRecord, event: AuditEvent) -> None:
        """:meth:`add` and chain ``event`` onto the audit log: both or neither."""

    async def revoke_recorded(self, client_id: str, event: AuditEvent) -> ClientRecord:
        """:meth:`revoke` and chain ``event`` onto the audit log: both or neither."""


class InMemoryClientStore:
    """A :class:`ClientStore` in a dict (tests, single-process dev); recorded changes go to ``audit``
    right after the change (a failing add or revoke records nothing)."""

    def __init__(self, audit: AuditSink | None = None) -> None:
        self._records: dict[str, ClientRecord] = {}
        self._lock = threading.Lock()
        self._audit = audit if audit is not None else InMemoryAuditSink()

    async def add_recorded(self, record: ClientRecord, event: AuditEvent) -> None:
        await self.add(record)
        await self._audit.append(event)

    async def revoke_recorded(self, client_id: str, event: AuditEvent) -> ClientRecord:
        updated = await self.revoke(client_id)
        await self._audit.append(event)
        return updated

    async def get(self, client_id: str) -> ClientRecord | None:
        return self._records.get(client_id)

    async def add(self, record: ClientRecord) -> None:
        with self._lock:
            if record.client_id in self._records:
                raise Conflict(f"client {record.client_id} exists")
            self._records[record.client_id] = record

    async def revoke(self, client_id: str) -> ClientRecord:
        with self._lock:
            record = self._records.get(client_id)
            if record is None:
                raise NotFound(f"no client {client_id}")
            updated = replace(record, revoked=True)
            self._records[client_id] = updated
            return updated

    async def list(self) -> Sequence[ClientRecord]:
        return sorted(self._records.values(), key=lambda r: (r.created_at, r.client_id))


# --- tokens ------------------------------------------------------------------------------------


def hash_token(token: str) -> bytes:
    """The stored form of a token (see the module docstring for why plain SHA-256)."""
    return hashlib.sha256(_HASH_TAG + token.encode("ascii")).digest()


def new_token() -> tuple[str, str]:
    """A fresh ``(client_id, token)`` pair."""
    client_id = secrets.token_hex(6)
    return client_id, f"{TOKEN_PREFIX}_{client_id}_{secrets.token_urlsafe(32)}"


def parse_client_id(token: str) -> str:
    """The public id inside a token; :class:`AuthenticationRequired` if it is not of our form."""
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise AuthenticationRequired("invalid or revoked token")
    return match["id"]


async def authenticate(store: ClientStore, token: str) -> ClientRecord:
    """The client a token belongs to; fails closed for malformed, unknown, wrong or revoked tokens."""
    client_id = parse_client_id(token)
    record = await store.get(client_id)
    expected = record.token_hash if record is not None else _DUMMY_HASH
    matches = hmac.compare_digest(hash_token(token), expected)
    if record is None or not matches or record.revoked:
        log.info("token refused for client %s", client_id)
        raise AuthenticationRequired("invalid or revoked token")
    return record


CACHE_MAX_AGE = 30.0  # seconds a cached client record is trusted before it is read again


class ClientCache:
    """A worker's recently authenticated clients, so the hot path skips the per-request lookup.

    Only for routes that confirm the client again inside their own transaction (the group-committed
    verifications check every batch's clients in one query, see ``Database.run_batched``): a token
    revoked by any worker then stops working on the next request that commits, as without the cache.
    Entries hold the stored hash, never the token; they are re-read after :data:`CACHE_MAX_AGE`.
    """

    def __init__(self, *, max_age: float = CACHE_MAX_AGE, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 10_000) -> None:
        self._entries: dict[str, tuple[ClientRecord, float]] = {}
        self._max_age, self._clock, self._max_entries = max_age, clock, max_entries

    def get(self, client_id: str) -> ClientRecord | None:
        entry = self._entries.get(client_id)
        if entry is None or self._clock() - entry[1] > self._max_age:
            return None
        return entry[0]

    def put(self, record: ClientRecord) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()  # bounded; ids come from authenticated tokens only
        self._entries[record.client_id] = (record, self._clock())


async def authenticate_cached(store: ClientStore, cache: ClientCache, token: str) -> ClientRecord:
    """:func:`authenticate`, answered from ``cache`` when this worker admitted the client lately.

    The caller must confirm the client inside its transaction (see :class:`ClientCache`).
    """
    record = cache.get(parse_client_id(token))
    if record is not None and hmac.compare_digest(hash_token(token), record.token_hash):
        return record
    record = await authenticate(store, token)
    cache.put(record)
    return record


def new_client(
    *,
    label: str,
    role: Role,
    service_point_id: str | None = None,
    partner_base_id: str | None = None,
    clock: Clock = utc_now,
) -> IssuedToken:
    """A new client with a new random token, not stored yet: the caller adds ``client`` (only its
    hash) in the transaction that also records the change."""
    if not 1 <= len(label) <= 80:
        raise InvalidRecord("1-80 characters", field="label", reason="length_1_80")
    client_id, token = new_token()
    record = ClientRecord(
        client_id=client_id,
        label=label,
        role=role,
        token_hash=hash_token(token),
        created_at=clock(),
        service_point_id=service_point_id,
        partner_base_id=partner_base_id,
    )
    return IssuedToken(client=record, token=token)


async def create_client(
    store: ClientStore,
    *,
    label: str,
    role: Role,
    service_point_id: str | None = None,
    partner_base_id: str | None = None,
    clock: Clock = utc_now,
) -> IssuedToken:
    """Create a client with a new random token; the token is returned once and stored only hashed."""
    issued = new_client(label=label, role=role, service_point_id=service_point_id,
                        partner_base_id=partner_base_id, clock=clock)
    await store.add(issued.client)
    log.info("client %s created with role %s", issued.client.client_id, role.value)
    return issued


async def revoke_client(store: ClientStore, client_id: str) -> ClientRecord:
    """Revoke a client; its token stops working on the next request."""
    record = await store.revoke(client_id)
    log.info("client %s revoked", client_id)
    return record
