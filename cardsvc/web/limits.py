"""Limits of the pages: the request body and the sign-in attempts per source address.

* Body: a member-list upload may be a few MiB, nothing more (a bilingual 413).
* Sign-in: every ``POST /login`` takes a token from its source address's bucket
  (:func:`cardsvc.verification.ratelimit.source_key`: an IPv4 address, an IPv6 /64) before the
  password is hashed, so spraying one password over many usernames is slowed even though no single
  account reaches its lock-out. Shared through Redis when ``CARDSVC_REDIS_URL`` is set (its own key
  prefix), else per process with a bounded number of buckets.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardsvc.config import Settings
from cardsvc.verification.ratelimit import (
    SOURCE_MAX_KEYS,
    InProcessRateLimiter,
    RateLimit,
    RateLimiter,
    RedisRateLimiter,
)

MAX_PAGE_BODY = 8 * 1024 * 1024
# An office behind one NAT signs in its shift at once (30), then one attempt every 5 s on average:
# a password sprayed from one address reaches ~720 usernames an hour instead of thousands a minute.
# The defaults of CARDSVC_LOGIN_RATE_BURST / CARDSVC_LOGIN_RATE_PER_SECOND.
LOGIN_LIMIT = RateLimit(burst=30, per_second=0.2)
LOGIN_PREFIX = "cardsvc:rl:login:"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimit:
    """Refuse a declared ``Content-Length`` over the limit at once, and a longer stream as it grows."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_PAGE_BODY) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _too_large(send)
            return
        state = _Stream()
        try:
            await self.app(scope, self._counting(receive, state), self._guarded(send, state))
        except BodyTooLarge:
            pass  # answered below (or already, by the guarded send)
        if state.exceeded and not state.answered:
            await _too_large(send)

    def _counting(self, receive: Receive, state: _Stream) -> Receive:
        async def counted() -> Message:
            message = await receive()
            state.seen += len(message.get("body", b""))
            if state.seen > self.max_body:
                state.exceeded = True
                raise BodyTooLarge
            return message

        return counted

    @staticmethod
    def _guarded(send: Send, state: _Stream) -> Send:
        """Whatever the app answers once the limit is passed (FastAPI turns a failed form read into
        a 400) is replaced by the 413."""

        async def guarded(message: Message) -> None:
            if not state.exceeded:
                await send(message)
            elif message["type"] == "http.response.start" and not state.answered:
                state.answered = True
                await _too_large(send)

        return guarded


@dataclass
class _Stream:
    seen: int = 0
    exceeded: bool = False
    answered: bool = False


class BodyTooLarge(Exception):
    """A streamed body passed the limit (the pages' error handlers answer 413)."""


async def _too_large(send: Send) -> None:
    body = "上传内容过大 / The upload is too large.".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def build_login_limiter(settings: Settings, limit: RateLimit | None = None) -> RateLimiter:
    """The sign-in limiter per source address: Redis when configured, else in process (bounded)."""
    limit = limit or RateLimit(burst=settings.login_rate_burst, per_second=settings.login_rate_per_second)
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url, limit, prefix=LOGIN_PREFIX)
    return InProcessRateLimiter(limit, max_keys=SOURCE_MAX_KEYS)
