"""Sign-in throttling per source address, and refusals that never tell whether a username exists.

The per-account lock-out cannot stop one password sprayed over many usernames; the per-source
bucket (:mod:`cardsvc.web.limits`) does. The buckets here are tiny and never refill, so the tests
need no clock.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from cardsvc.api.services import in_memory_services
from cardsvc.config import get_settings
from cardsvc.registry.db import session_factory
from cardsvc.registry.staff import MAX_FAILURES, LoginRefused, StaffAccounts
from cardsvc.verification.ratelimit import InProcessRateLimiter, RateLimit, RedisRateLimiter
from cardsvc.verification.roles import Role
from cardsvc.web.app import Composed, create_web_app
from cardsvc.web.context import WebContext
from cardsvc.web.i18n import LANG_COOKIE
from cardsvc.web.limits import LOGIN_LIMIT, LOGIN_PREFIX, build_login_limiter
from tests.support.browser import STAFF, STAFF_PASSWORD
from tests.web.support import Site, csrf_in, make_site

BUDGET = 3
SPRAYED = "sprayed-password-1"
_MESSAGE = re.compile(r'id="login-message">([^<]*)<')


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with make_site(tmp_path) as made:
        web = made.app.pages.state.web
        assert isinstance(web, WebContext)
        web.login_limiter = InProcessRateLimiter(RateLimit(burst=BUDGET, per_second=1e-6))
        yield made


def _from(site: Site, host: str) -> None:
    """Send the site's next requests from ``host`` (a fresh cookie jar)."""
    site.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app, client=(host, 40000)),
                                    base_url="http://testserver")


def _attempt(site: Site, username: str, password: str = SPRAYED) -> httpx.Response:
    page = site.get("/login")
    return site.post("/login", data={"username": username, "password": password,
                                     "csrf": csrf_in(page.text), "next": "/"})


def _message(response: httpx.Response) -> str:
    found = _MESSAGE.search(response.text)
    assert found, f"no login message in a {response.status_code} page"
    return found.group(1)


def test_spraying_many_usernames_from_one_address_gets_a_429_in_chinese(site: Site) -> None:
    _from(site, "203.0.113.9")
    for n in range(BUDGET):
        assert _attempt(site, f"nobody{n}").status_code == 401
    refused = _attempt(site, STAFF[Role.clerk][0], STAFF_PASSWORD)  # even the right password waits
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert _message(refused) == "此网络的登录尝试过于频繁，请稍后再试。"
    assert 'lang="zh-CN"' in refused.text and "csrf" in refused.text  # the form is still there


def test_the_429_page_follows_the_page_language(site: Site) -> None:
    _from(site, "203.0.113.10")
    site.client.cookies.set(LANG_COOKIE, "en")
    for n in range(BUDGET):
        _attempt(site, f"nobody{n}")
    refused = _attempt(site, "nobody")
    assert refused.status_code == 429
    assert _message(refused) == "Too many sign-in attempts from this network: try again shortly."


def test_an_ipv6_64_is_one_source_and_other_addresses_keep_their_budget(site: Site) -> None:
    for n in range(BUDGET):
        _from(site, f"2001:db8:1:2::{n + 1}")  # one /64, new interface ids
        assert _attempt(site, "nobody").status_code == 401
    _from(site, "2001:db8:1:2:ffff::1")
    assert _attempt(site, "nobody").status_code == 429
    _from(site, "2001:db8:1:3::1")  # the next /64
    assert _attempt(site, "nobody").status_code == 401
    _from(site, "198.51.100.1")
    assert _attempt(site, STAFF[Role.admin][0], STAFF_PASSWORD).status_code == 303


def test_unknown_user_wrong_password_and_locked_account_read_the_same(tmp_path: Path) -> None:
    with make_site(tmp_path) as site:  # the default budget: lock-out comes first here
        unknown = _attempt(site, "no-such-user")
        wrong = _attempt(site, STAFF[Role.clerk][0])
        for _ in range(MAX_FAILURES):
            _attempt(site, STAFF[Role.partner][0])
        locked = _attempt(site, STAFF[Role.partner][0], STAFF_PASSWORD)
    assert unknown.status_code == wrong.status_code == locked.status_code == 401
    assert _message(unknown) == _message(wrong) == _message(locked)
    assert "锁定 15 分钟" in _message(locked)  # a real user still learns about the lock-out


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def test_every_refusal_costs_one_argon2_verification(site: Site) -> None:
    hasher = CountingHasher()
    accounts = StaffAccounts(session_factory(site.engine), hasher=hasher)
    username = STAFF[Role.service_point][0]
    costs = {}
    for label, name in (("unknown", "no-such-user"), ("wrong", username)):
        before = hasher.verified
        with pytest.raises(LoginRefused, match="wrong username or password"):
            accounts.authenticate(name, "not the password")
        costs[label] = hasher.verified - before
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(LoginRefused, match="wrong username or password"):
            accounts.authenticate(username, "not the password")
    before = hasher.verified
    with pytest.raises(LoginRefused, match="locked"):
        accounts.authenticate(username, STAFF_PASSWORD)
    costs["locked"] = hasher.verified - before
    assert costs == {"unknown": 1, "wrong": 1, "locked": 1}


def test_settings_choose_the_login_limiter_backend() -> None:
    local = build_login_limiter(get_settings())
    assert isinstance(local, InProcessRateLimiter) and local.limit == LOGIN_LIMIT
    shared = build_login_limiter(get_settings(redis_url="redis://127.0.0.1:6379/15"))
    assert isinstance(shared, RedisRateLimiter) and shared.limit == LOGIN_LIMIT
    assert shared._prefix == LOGIN_PREFIX  # not the tap page's buckets
    # On a thread of its own: a session-wide Playwright marks this thread's event loop as running.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, shared.aclose()).result()


def test_the_login_budget_is_a_setting() -> None:
    settings = get_settings(login_rate_burst=5, login_rate_per_second=1.0)
    limiter = build_login_limiter(settings)
    assert isinstance(limiter, InProcessRateLimiter)
    assert limiter.limit == RateLimit(burst=5, per_second=1.0)


async def _start_and_stop(app: Composed) -> list[str]:
    """One ASGI lifespan, as uvicorn runs it: startup, then shutdown; the message types sent back."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    for event in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": event})
    sent: list[str] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    return sent


def test_the_redis_login_limiter_is_closed_at_shutdown(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[RedisRateLimiter] = []
    original = RedisRateLimiter.aclose

    async def recording(self: RedisRateLimiter) -> None:
        closed.append(self)
        await original(self)

    monkeypatch.setattr(RedisRateLimiter, "aclose", recording)
    settings = get_settings(env="dev", data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/15")
    app = create_web_app(settings, services=in_memory_services(settings))
    web = app.pages.state.web
    assert isinstance(web, WebContext)
    limiter = web.login_limiter  # built on the first sign-in
    assert isinstance(limiter, RedisRateLimiter)
    with ThreadPoolExecutor(1) as worker:  # asyncio.run off the browser's thread
        sent = worker.submit(asyncio.run, _start_and_stop(app)).result()
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert limiter in closed  # the pages' own client, besides the API's limiters
    assert "login_limiter" not in vars(web)  # a later sign-in would build a fresh one


def test_a_login_limiter_never_built_is_not_built_to_be_closed(tmp_path: Path) -> None:
    settings = get_settings(env="dev", data_dir=tmp_path)
    app = create_web_app(settings, services=in_memory_services(settings))
    with ThreadPoolExecutor(1) as worker:
        sent = worker.submit(asyncio.run, _start_and_stop(app)).result()
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "login_limiter" not in vars(app.pages.state.web)
