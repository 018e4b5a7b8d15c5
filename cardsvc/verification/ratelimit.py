"""Rate limits: a token bucket per client (or per source address), in process or shared through Redis.

Keys are client ids, taken *after* authentication: an unauthenticated caller cannot create buckets,
so memory is bounded by the number of registered clients. The one exception is the public phone-tap
page, which has no client: it is limited per source address (:func:`source_key`, an IPv6 address
counted by its /64) with its own, smaller :data:`SOURCE_LIMIT`; those in-process buckets are capped
at ``max_keys`` (least recently used dropped first) and the Redis ones expire.

Every bucket holds up to ``burst`` tokens and refills at ``per_second``; a request takes one token or
raises :class:`RateLimited` with the whole seconds until one is back (the API's ``Retry-After``).

:class:`RedisRateLimiter` keeps the same bucket in a Redis hash updated by one atomic Lua script
(no INCR+EXPIRE fixed window: a window lets a client send 2× the limit across its edge). The script
reads the clock from Redis ``TIME``, so workers and hosts with skewed clocks share one bucket fairly;
it needs Redis ≥ 5 (effects replication). Idle buckets expire once they would be full again.
If Redis fails, the limiter logs a warning and falls back to an in-process bucket: limits stay on
per worker instead of the whole service going down with Redis.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cardsvc.config import Settings
from cardsvc.errors import ConfigError, RateLimited
from cardsvc.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``burst`` requests at once, then ``per_second`` on average."""

    burst: int = 120
    per_second: float = 30.0

    def __post_init__(self) -> None:
        if self.burst < 1 or not self.per_second > 0:
            raise ConfigError("rate limit needs burst >= 1 and per_second > 0")


DEFAULT_LIMIT = RateLimit()
# The phone-tap page per source address: a lobby full of phones behind one NAT taps well within
# 30 at once and one a second; a script replaying guesses does not get far.
SOURCE_LIMIT = RateLimit(burst=30, per_second=1.0)
SOURCE_MAX_KEYS = 100_000
SOURCE_PREFIX = "cardsvc:rl:src:"


def source_key(host: str | None) -> str:
    """The bucket of a source address: the IPv4 address, an IPv6 address's /64, or ``unknown``."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return "ip:unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


class RateLimiter(Protocol):
    async def acquire(self, key: str) -> None:
        """Take one token for ``key`` or raise :class:`RateLimited`."""

    async def aclose(self) -> None: ...


def _retry_after(missing_tokens: float, per_second: float) -> int:
    return max(1, math.ceil(missing_tokens / per_second))


class InProcessRateLimiter:
    """Token buckets in this process's memory; ``clock`` returns seconds (monotonic)."""

    def __init__(self, limit: RateLimit = DEFAULT_LIMIT, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int | None = None):
        self.limit = limit
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    async def acquire(self, key: str) -> None:
        self.take(key)

    def take(self, key: str) -> None:
        """The synchronous body of :meth:`acquire`."""
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.get(key, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - updated) * self.limit.per_second)
            if tokens < 1.0:
                self._store(key, (tokens, now))
                raise RateLimited(retry_after=_retry_after(1.0 - tokens, self.limit.per_second))
            self._store(key, (tokens - 1.0, now))

    def _store(self, key: str, bucket: tuple[float, float]) -> None:
        """Keep ``key``'s bucket as the most recently used; drop the least recent over ``max_keys``."""
        self._buckets[key] = bucket
        if self._max_keys is not None:
            self._buckets.move_to_end(key)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)

    async def aclose(self) -> None:
        return None


# KEYS[1] bucket hash; ARGV: burst, refill per second. Returns 0 when a token was taken, else the
# milliseconds until one is back. Tokens are stored as a fixed-point string so no refill is lost.
_BUCKET_LUA = """
local burst = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * refill / 1000000)
end
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait_ms = math.ceil((1 - tokens) * 1000 / refill)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / refill) + 1000)
return wait_ms
"""


class RedisRateLimiter:
    """Token buckets in Redis, shared by every worker and host using the same Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        limit: RateLimit = DEFAULT_LIMIT,
        *,
        prefix: str = "cardsvc:rl:",
        fallback: InProcessRateLimiter | None = None,
    ) -> None:
        self.limit = limit
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_BUCKET_LUA)
        self._fallback = fallback or InProcessRateLimiter(limit, max_keys=SOURCE_MAX_KEYS)

    @classmethod
    def from_url(
        cls, url: str, limit: RateLimit = DEFAULT_LIMIT, *, prefix: str = "cardsvc:rl:"
    ) -> RedisRateLimiter:
        client = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, limit, prefix=prefix)

    async def acquire(self, key: str) -> None:
        try:
            wait_ms = await self._script(
                keys=[self._prefix + key],
                args=[self.limit.burst, repr(self.limit.per_second)],
            )
        except RedisError as exc:
            log.warning("redis rate limiter unavailable (%s); limiting in process", type(exc).__name__)
            self._fallback.take(key)
            return
        if int(wait_ms) > 0:
            raise RateLimited(retry_after=max(1, math.ceil(int(wait_ms) / 1000)))

    async def ping(self) -> None:
        """Readiness probe: raises when Redis does not answer."""
        await self._client.ping()

    async def aclose(self) -> None:
        await self._client.aclose()


def build_rate_limiter(settings: Settings, limit: RateLimit = DEFAULT_LIMIT) -> RateLimiter:
    """Redis-backed when ``CARDSVC_REDIS_URL`` is set, in-process otherwise."""
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url, limit)
    return InProcessRateLimiter(limit)


def build_source_limiter(settings: Settings, limit: RateLimit = SOURCE_LIMIT) -> RateLimiter:
    """The per-source-address limiter of the public page: shared through Redis when configured
    (its own key prefix), else in process with at most :data:`SOURCE_MAX_KEYS` buckets."""
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url, limit, prefix=SOURCE_PREFIX)
    return InProcessRateLimiter(limit, max_keys=SOURCE_MAX_KEYS)
