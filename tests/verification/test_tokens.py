"""API client tokens: format, hashed storage, authentication failures, revocation, role binding."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import pytest

from cardsvc.errors import AuthenticationRequired, Conflict, InvalidRecord, NotFound
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import (
    ClientCache,
    ClientRecord,
    InMemoryClientStore,
    IssuedToken,
    authenticate,
    authenticate_cached,
    create_client,
    hash_token,
    parse_client_id,
    revoke_client,
)

T0 = datetime(2026, 11, 24, tzinfo=UTC)


def make(store: InMemoryClientStore, role: Role = Role.clerk, **kw: str) -> IssuedToken:
    return asyncio.run(create_client(store, label="front desk 1", role=role, clock=lambda: T0, **kw))


def test_token_format_and_hash_storage() -> None:
    store = InMemoryClientStore()
    issued = make(store)
    prefix, client_id, secret = issued.token.split("_", 2)
    assert prefix == "cs" and client_id == issued.client.client_id and len(secret) == 43
    assert issued.client.token_hash == hash_token(issued.token)
    assert issued.client.token_hash != hashlib.sha256(issued.token.encode()).digest()  # domain-tagged
    assert issued.token not in repr(issued) and issued.token not in repr(issued.client)
    assert issued.client.created_at == T0


def test_tokens_are_unique() -> None:
    store = InMemoryClientStore()
    tokens = {make(store).token for _ in range(50)}
    assert len(tokens) == 50


def test_authenticate_returns_the_client() -> None:
    store = InMemoryClientStore()
    issued = make(store, Role.partner, partner_base_id="base-7")
    record = asyncio.run(authenticate(store, issued.token))
    assert record.role is Role.partner and record.partner_base_id == "base-7"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "cs_000000000000_" + t.split("_", 2)[2],  # unknown id
        lambda t: t.replace("cs_", "xx_"),  # wrong prefix
        lambda t: t + "A",  # too long
        lambda _: "",  # empty
        lambda _: "cs_" + "é" * 60,  # non-ASCII
    ],
)
def test_bad_tokens_are_refused(mangle) -> None:
    store = InMemoryClientStore()
    issued = make(store)
    with pytest.raises(AuthenticationRequired, match="invalid or revoked token"):
        asyncio.run(authenticate(store, mangle(issued.token)))


def test_revoked_token_is_refused() -> None:
    store = InMemoryClientStore()
    issued = make(store)
    revoked = asyncio.run(revoke_client(store, issued.client.client_id))
    assert revoked.revoked
    with pytest.raises(AuthenticationRequired):
        asyncio.run(authenticate(store, issued.token))


def test_revoking_unknown_client_is_not_found() -> None:
    with pytest.raises(NotFound):
        asyncio.run(revoke_client(InMemoryClientStore(), "0123456789ab"))


def test_duplicate_client_id_conflicts() -> None:
    store = InMemoryClientStore()
    issued = make(store)
    with pytest.raises(Conflict):
        asyncio.run(store.add(issued.client))


def test_hash_moved_to_another_row_does_not_authenticate() -> None:
    store = InMemoryClientStore()
    a, b = make(store), make(store)
    forged = ClientRecord(client_id=b.client.client_id, label="x", role=Role.admin,
                          token_hash=a.client.token_hash, created_at=T0)
    other = InMemoryClientStore()
    asyncio.run(other.add(forged))
    with pytest.raises(AuthenticationRequired):
        asyncio.run(authenticate(other, a.token))


@pytest.mark.parametrize(
    ("role", "kw", "field"),
    [
        (Role.service_point, {}, "service_point_id"),
        (Role.partner, {}, "partner_base_id"),
        (Role.clerk, {"service_point_id": "sp-1"}, "service_point_id"),
        (Role.admin, {"partner_base_id": "b-1"}, "partner_base_id"),
        (Role.partner, {"partner_base_id": "bad id with spaces"}, "partner_base_id"),
    ],
)
def test_binding_rules(role: Role, kw: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        make(InMemoryClientStore(), role, **kw)
    assert info.value.field == field


def test_label_length_is_checked() -> None:
    with pytest.raises(InvalidRecord):
        asyncio.run(create_client(InMemoryClientStore(), label="", role=Role.clerk))


def test_parse_client_id() -> None:
    assert parse_client_id("cs_0123456789ab_" + "A" * 43) == "0123456789ab"
    with pytest.raises(AuthenticationRequired):
        parse_client_id("cs_0123456789AB_" + "A" * 43)  # ids are lowercase hex


def test_list_is_ordered() -> None:
    store = InMemoryClientStore()
    made = [make(store).client.client_id for _ in range(3)]
    listed = [r.client_id for r in asyncio.run(store.list())]
    assert sorted(made) == listed  # same created_at: ordered by id


# --- the worker's client cache ------------------------------------------------------------------


class _Counting(InMemoryClientStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, client_id: str) -> ClientRecord | None:
        self.reads += 1
        return await super().get(client_id)


def test_cache_answers_a_known_client_until_its_entry_is_old() -> None:
    store, now = _Counting(), [0.0]
    cache = ClientCache(max_age=30.0, clock=lambda: now[0])
    issued = make(store)
    for _ in range(3):
        assert asyncio.run(authenticate_cached(store, cache, issued.token)) == issued.client
    assert store.reads == 1
    now[0] = 31.0
    asyncio.run(authenticate_cached(store, cache, issued.token))
    assert store.reads == 2


def test_cache_refuses_a_wrong_secret_and_never_stores_failures() -> None:
    store = _Counting()
    cache = ClientCache()
    issued = make(store)
    asyncio.run(authenticate_cached(store, cache, issued.token))
    forged = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
    with pytest.raises(AuthenticationRequired):
        asyncio.run(authenticate_cached(store, cache, forged))
    revoked = make(store)
    asyncio.run(store.revoke(revoked.client.client_id))
    for _ in range(2):
        with pytest.raises(AuthenticationRequired):
            asyncio.run(authenticate_cached(store, cache, revoked.token))
    assert cache.get(revoked.client.client_id) is None


def test_cache_stays_bounded() -> None:
    store = InMemoryClientStore()
    cache = ClientCache(max_entries=3)
    for _ in range(7):
        asyncio.run(authenticate_cached(store, cache, make(store).token))
    assert sum(cache.get(c.client_id) is not None for c in asyncio.run(store.list())) <= 3


def test_in_memory_recorded_changes_chain_their_event_and_a_refused_one_records_nothing() -> None:
    from cardsvc.verification.audit import AuditEvent, InMemoryAuditSink, Outcome
    from cardsvc.verification.tokens import new_client

    def event(kind: str, subject: str) -> AuditEvent:
        return AuditEvent(event_type=f"client.{kind}", actor="admin01", subject=subject, outcome=Outcome.ok,
                          reason=kind, timestamp=T0)

    async def scenario() -> list[str]:
        audit = InMemoryAuditSink()
        store = InMemoryClientStore(audit)
        issued = new_client(label="desk", role=Role.clerk, clock=lambda: T0)
        await store.add_recorded(issued.client, event("create", issued.client.client_id))
        with pytest.raises(Conflict):
            await store.add_recorded(issued.client, event("create", issued.client.client_id))
        with pytest.raises(NotFound):
            await store.revoke_recorded("0123456789ab", event("revoke", "0123456789ab"))
        client_id = issued.client.client_id
        revoked = await store.revoke_recorded(client_id, event("revoke", client_id))
        assert revoked.revoked
        return [row.event.event_type for row in await audit.rows()]

    assert asyncio.run(scenario()) == ["client.create", "client.revoke"]
