"""The public phone-tap page is limited per source address (it has no client): 429 with
Retry-After and a zh-CN page; staff with a valid token keep their per-client limit; a bad token
does not escape the source limit; buckets are shared through Redis when one is configured."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from cardsvc.config import Settings, get_settings
from cardsvc.errors import RateLimited
from cardsvc.registry import verification_repo as repo
from cardsvc.verification.ratelimit import (
    InProcessRateLimiter,
    RateLimit,
    RedisRateLimiter,
    build_source_limiter,
    source_key,
)
from cardsvc.verification.roles import Role
from tests.api.conftest import Api
from tests.api.verify_support import make_db_api
from tests.verification.world import World, make_world, sqlite_url

BURST = 3
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made


@pytest.fixture
def api(settings: Settings, world: World) -> Iterator[Api]:
    with make_db_api(settings, world, source_limit=RateLimit(burst=BURST, per_second=0.01)) as made:
        yield made


def _tap(api: Api, world: World, *, host: str = "198.51.100.7", token: str | None = None) -> httpx.Response:
    parts = urlsplit(world.tap_url(world.cards[0]))
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(f"{parts.path}?{parts.query}", headers=headers)

    return api.run(get())


def _audit_count(world: World) -> int:
    with world.session() as s:
        return repo.audit_count(s)


def test_anonymous_taps_past_the_burst_get_a_429_page(api: Api, world: World) -> None:
    world.issue_card()
    assert [_tap(api, world).status_code for _ in range(BURST)] == [200] * BURST
    refused = _tap(api, world)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "100"  # one token back at 0.01/s
    assert refused.headers["content-type"].startswith("text/html")
    assert "请求过于频繁" in refused.text and "100 秒后再试" in refused.text
    assert _audit_count(world) == BURST  # the refused tap recorded nothing


def test_another_address_has_its_own_bucket(api: Api, world: World) -> None:
    world.issue_card()
    for _ in range(BURST + 1):
        _tap(api, world)
    assert _tap(api, world, host="203.0.113.9").status_code == 200


def test_staff_keep_their_per_client_limit_and_bad_tokens_do_not_escape(api: Api, world: World) -> None:
    world.issue_card()
    for _ in range(BURST + 1):
        _tap(api, world)
    staff = _tap(api, world, token=api.token(Role.service_point))
    assert staff.status_code == 200 and "所在工会" in staff.text
    assert _tap(api, world, token="cs_000000000000_garbage").status_code == 429
    assert _tap(api, world, token=api.token(Role.partner, revoked=True)).status_code == 429


def test_authenticated_json_routes_do_not_touch_the_source_bucket(api: Api, world: World) -> None:
    card = world.issue_card()
    for _ in range(BURST + 1):
        _tap(api, world, host="127.0.0.1")  # the ASGI test client's own address
    body = api.request("POST", "/v1/verify/qr", token=api.token(Role.partner), json={"qr": card.qr})
    assert body.status_code == 200 and body.json()["outcome"] == "OK"


@pytest.mark.parametrize(("host", "key"), [
    ("198.51.100.7", "ip:198.51.100.7"),
    ("2001:db8:1:2:aaaa::1", "ip:2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "ip:2001:db8:1:2::/64"),  # same /64, same bucket
    ("::ffff:198.51.100.7", "ip:198.51.100.7"),
    (None, "ip:unknown"),
    ("testclient", "ip:unknown"),
])
def test_source_keys(host: str | None, key: str) -> None:
    assert source_key(host) == key


def test_in_process_source_buckets_are_capped() -> None:
    limiter = InProcessRateLimiter(RateLimit(burst=1, per_second=0.01), max_keys=2)
    limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")
    limiter.take("b")
    limiter.take("c")  # evicts "a", the least recently used
    limiter.take("a")  # a fresh bucket again: memory stays bounded, at the price of a new burst
    with pytest.raises(RateLimited):
        limiter.take("c")


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.3, socket_timeout=0.3).ping())
    except redis.RedisError:
        return False


def test_settings_choose_the_source_backend() -> None:
    assert isinstance(build_source_limiter(get_settings()), InProcessRateLimiter)
    chosen = build_source_limiter(get_settings(redis_url=REDIS_URL))
    assert isinstance(chosen, RedisRateLimiter)
    asyncio.run(chosen.aclose())


if _redis_answers():  # generated only when a Redis answers (never a skip counted as a pass)

    def test_two_workers_share_source_buckets_through_redis() -> None:
        settings = get_settings(redis_url=REDIS_URL)
        limit = RateLimit(burst=BURST, per_second=0.01)
        key = source_key(f"192.0.2.{uuid.uuid4().int % 250 + 1}") + uuid.uuid4().hex  # fresh bucket

        async def run() -> list[bool]:
            workers = [build_source_limiter(settings, limit), build_source_limiter(settings, limit)]
            taken = []
            for i in range(2 * BURST):
                try:
                    await workers[i % 2].acquire(key)
                    taken.append(True)
                except RateLimited:
                    taken.append(False)
            for worker in workers:
                await worker.aclose()
            return taken

        assert asyncio.run(run()).count(True) == BURST
