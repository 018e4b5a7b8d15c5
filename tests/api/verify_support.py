"""A DB-backed API for route tests: the real app over a verification :class:`World`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from cardsvc.api.app import create_app
from cardsvc.api.services import Services
from cardsvc.config import Settings
from cardsvc.verification.ratelimit import SOURCE_MAX_KEYS, InProcessRateLimiter, RateLimit
from cardsvc.verification.store import DbAuditSink, DbClientStore
from cardsvc.verification.tokens import ClientCache
from tests.api.conftest import Api
from tests.verification.world import World


def world_services(world: World, *, rate_limit: RateLimit | None = None,
                   source_limit: RateLimit | None = None) -> Services:
    limit = rate_limit or RateLimit(burst=10_000, per_second=1e4)
    sources = InProcessRateLimiter(source_limit or limit, max_keys=SOURCE_MAX_KEYS)
    return Services(clients=DbClientStore(world.db), rate_limiter=InProcessRateLimiter(limit),
                    audit=DbAuditSink(world.db), readiness={"db": world.db.ping}, verification=world.svc,
                    client_cache=ClientCache(), source_limiter=sources)  # as db_services wires it


@contextmanager
def make_db_api(settings: Settings, world: World, *, rate_limit: RateLimit | None = None,
                source_limit: RateLimit | None = None) -> Iterator[Api]:
    services = world_services(world, rate_limit=rate_limit, source_limit=source_limit)
    with asyncio.Runner() as runner:
        api = Api(create_app(settings, services=services), runner)
        api.world = world  # type: ignore[attr-defined]
        yield api
        runner.run(api.client.aclose())


def world_of(api: Api) -> World:
    world = getattr(api, "world", None)
    assert isinstance(world, World), "this test needs the DB-backed api fixture"
    return world


def newest_client_id(api: Api) -> str:
    """The most recently created client (a placeholder id when there is none yet)."""
    clients = api.run(api.services.clients.list())
    return max(clients, key=lambda c: c.created_at).client_id if clients else "000000000000"
