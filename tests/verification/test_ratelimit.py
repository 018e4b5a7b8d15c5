"""Per-client token buckets, in process and through Redis.

Redis: the Redis-backed cases run against ``CARDSVC_TEST_REDIS_URL`` when it is set — and FAIL (not
skip) if that server does not answer — otherwise against redis://127.0.0.1:6379 only when a server
answers there. On a machine without Redis the Redis cases are simply not generated; every in-process
case always runs, and the fallback test (Redis configured but down) always runs too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio

from cardsvc.config import get_settings
from cardsvc.errors import ConfigError, RateLimited
from cardsvc.verification.ratelimit import (
    InProcessRateLimiter,
    RateLimit,
    RateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
)

_EXPLICIT = os.environ.get("CARDSVC_TEST_REDIS_URL")
REDIS_URL = _EXPLICIT or "redis://127.0.0.1:6379/15"


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.3, socket_timeout=0.3).ping())
    except redis.RedisError:
        return False


BACKENDS = ["in_process"] + (["redis"] if _EXPLICIT or _redis_answers(REDIS_URL) else [])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LimiterFactory = Callable[[RateLimit], RateLimiter]


@pytest.fixture(params=BACKENDS)
def make_limiter(request: pytest.FixtureRequest) -> Iterator[LimiterFactory]:
    if request.param == "in_process":
        yield lambda limit: InProcessRateLimiter(limit)
        return
    if not _redis_answers(REDIS_URL):
        pytest.fail(f"CARDSVC_TEST_REDIS_URL={REDIS_URL} is set but Redis does not answer")
    prefix = f"cardsvc-test:{uuid.uuid4().hex}:"

    def shared(limit: RateLimit) -> RedisRateLimiter:
        # The service's 0.5 s timeout makes a slow answer fall back to in-process limiting, on
        # purpose; these tests count shared tokens, so a busy CI machine must not trigger that.
        client = redis.asyncio.Redis.from_url(REDIS_URL, socket_timeout=10, socket_connect_timeout=10)
        return RedisRateLimiter(client, limit, prefix=prefix)

    yield shared


async def _attempts(limiter: RateLimiter, key: str, n: int) -> list[int | None]:
    """Concurrent acquires: None for allowed, the retry-after seconds for refused."""

    async def one() -> int | None:
        try:
            await limiter.acquire(key)
        except RateLimited as exc:
            return exc.retry_after
        return None

    try:
        return list(await asyncio.gather(*(one() for _ in range(n))))
    finally:
        await limiter.aclose()


def test_burst_then_refused_with_retry_after(make_limiter: LimiterFactory) -> None:
    results = asyncio.run(_attempts(make_limiter(RateLimit(burst=5, per_second=0.5)), "c1", 8))
    assert results.count(None) == 5
    assert [r for r in results if r is not None] == [2, 2, 2]  # one token back in 1/0.5 s


def test_concurrent_requests_take_exactly_the_burst(make_limiter: LimiterFactory) -> None:
    results = asyncio.run(_attempts(make_limiter(RateLimit(burst=10, per_second=0.01)), "c1", 50))
    assert results.count(None) == 10
    assert all(r == 100 for r in results if r is not None)


def test_clients_have_separate_buckets(make_limiter: LimiterFactory) -> None:
    async def run() -> tuple[list[int | None], list[int | None]]:
        limit = RateLimit(burst=2, per_second=0.1)
        return await _attempts(make_limiter(limit), "a", 3), await _attempts(make_limiter(limit), "b", 2)

    first, second = asyncio.run(run())
    assert first.count(None) == 2 and second == [None, None]


def test_tokens_come_back_over_time(make_limiter: LimiterFactory) -> None:
    async def run() -> list[int | None]:
        limiter = make_limiter(RateLimit(burst=1, per_second=20.0))
        await limiter.acquire("c")
        await asyncio.sleep(0.12)  # > 1/20 s: one token back
        return await _attempts(limiter, "c", 2)

    assert asyncio.run(run()) == [None, 1]


def test_in_process_bucket_refills_with_injected_clock() -> None:
    now = [100.0]
    limiter = InProcessRateLimiter(RateLimit(burst=2, per_second=1.0), clock=lambda: now[0])
    limiter.take("k")
    limiter.take("k")
    with pytest.raises(RateLimited) as info:
        limiter.take("k")
    assert info.value.retry_after == 1
    now[0] += 0.5
    with pytest.raises(RateLimited):
        limiter.take("k")
    now[0] += 0.5
    limiter.take("k")  # refilled: no raise
    now[0] += 1000
    limiter.take("k")
    limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")  # capped at the burst, not 1000 tokens


def test_redis_down_falls_back_to_in_process_limits() -> None:
    down = f"redis://127.0.0.1:{_closed_port()}/0"
    limiter = RedisRateLimiter.from_url(down, RateLimit(burst=3, per_second=0.1))
    results = asyncio.run(_attempts(limiter, "c", 5))
    assert results.count(None) == 3


def test_settings_choose_the_backend() -> None:
    assert isinstance(build_rate_limiter(get_settings()), InProcessRateLimiter)
    chosen = build_rate_limiter(get_settings(redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(chosen, RedisRateLimiter)
    asyncio.run(chosen.aclose())


@pytest.mark.parametrize(("burst", "rate"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_bad_limits_are_refused(burst: int, rate: float) -> None:
    with pytest.raises(ConfigError):
        RateLimit(burst=burst, per_second=rate)


def test_two_workers_share_one_bucket_only_through_redis(
    make_limiter: LimiterFactory, request: pytest.FixtureRequest
) -> None:
    """Two limiters stand for two worker processes: Redis gives them one bucket per client."""
    backend = request.node.callspec.params["make_limiter"]

    async def run() -> int:
        limit = RateLimit(burst=3, per_second=0.01)
        worker_a, worker_b = make_limiter(limit), make_limiter(limit)
        results = await _attempts(worker_a, "c", 3) + await _attempts(worker_b, "c", 3)
        return results.count(None)

    assert asyncio.run(run()) == (3 if backend == "redis" else 6)
