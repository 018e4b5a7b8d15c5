"""What the API is built from: one container of injected services, no module globals.

:func:`in_memory_services` wires the DB-independent implementations (in-memory client store and
audit sink, in-process or Redis rate limiter); :func:`db_services` the production ones (client and
audit tables, the verification workflows, ``db``/``key_store`` readiness probes).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from cardsvc.config import Settings
from cardsvc.verification.audit import AuditSink, InMemoryAuditSink
from cardsvc.verification.db import Database
from cardsvc.verification.ratelimit import (
    DEFAULT_LIMIT,
    SOURCE_LIMIT,
    SOURCE_MAX_KEYS,
    InProcessRateLimiter,
    RateLimit,
    RateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
    build_source_limiter,
)
from cardsvc.verification.service import VerificationService
from cardsvc.verification.setup import VerifierKeyStore, build_verification
from cardsvc.verification.store import DbAuditSink, DbClientStore
from cardsvc.verification.tokens import ClientCache, ClientStore, InMemoryClientStore, utc_now

# A readiness probe returns None (ready) or raises; it may be a plain or an async callable.
ReadinessProbe = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a request handler may use. Built once per app; tests build their own."""

    clients: ClientStore
    rate_limiter: RateLimiter
    audit: AuditSink
    readiness: Mapping[str, ReadinessProbe] = field(default_factory=lambda: MappingProxyType({}))
    clock: Callable[[], datetime] = utc_now
    verification: VerificationService | None = None  # the DB-backed workflows (None: in-memory only)
    client_cache: ClientCache | None = None  # recently admitted clients (routes of auth.CONFIRMED_IN_COMMIT)
    # The public phone-tap page's limit per source address (it has no client to limit).
    source_limiter: RateLimiter = field(
        default_factory=lambda: InProcessRateLimiter(SOURCE_LIMIT, max_keys=SOURCE_MAX_KEYS))

    async def aclose(self) -> None:
        await self.rate_limiter.aclose()
        await self.source_limiter.aclose()
        if self.verification is not None:
            self.verification.db.close()
            self.verification.db.engine.dispose()


async def run_probe(probe: ReadinessProbe) -> None:
    """Await an async probe; run a plain one in a thread so a slow check cannot stall the loop."""
    result = probe() if inspect.iscoroutinefunction(probe) else await asyncio.to_thread(probe)
    if inspect.isawaitable(result):
        await result


def in_memory_services(settings: Settings, *, rate_limit: RateLimit = DEFAULT_LIMIT,
                       source_limit: RateLimit = SOURCE_LIMIT) -> Services:
    """Services that need no database: fine for tests and a single-process demo."""
    limiter = build_rate_limiter(settings, rate_limit)
    probes: dict[str, ReadinessProbe] = {}
    if isinstance(limiter, RedisRateLimiter):
        probes["redis"] = limiter.ping
    audit = InMemoryAuditSink()
    return Services(
        clients=InMemoryClientStore(audit),
        rate_limiter=limiter,
        audit=audit,
        readiness=MappingProxyType(probes),
        source_limiter=build_source_limiter(settings, source_limit),
    )


def db_services(settings: Settings, *, key_store: VerifierKeyStore | None = None,
                rate_limit: RateLimit = DEFAULT_LIMIT, database: Database | None = None,
                source_limit: RateLimit = SOURCE_LIMIT) -> Services:
    """Production services: clients, audit and workflows in the database, keys from the key store.

    The schema must be at head (``cardsvc init``); readiness probes ``db`` and ``key_store``.
    """
    from cardsvc.credential.keystore import open_key_store
    from cardsvc.registry.db import engine_for, require_head

    db = database or Database(engine_for(settings))
    require_head(db.engine)
    store = key_store or open_key_store(settings)
    verification = build_verification(settings, db, store)
    limiter = build_rate_limiter(settings, rate_limit)
    def key_store_probe() -> None:
        store.issuer_keys()

    probes: dict[str, ReadinessProbe] = {"db": db.ping, "key_store": key_store_probe}
    if isinstance(limiter, RedisRateLimiter):
        probes["redis"] = limiter.ping
    return Services(clients=DbClientStore(db), rate_limiter=limiter, audit=DbAuditSink(db),
                    readiness=MappingProxyType(probes), verification=verification, client_cache=ClientCache(),
                    source_limiter=build_source_limiter(settings, source_limit))
