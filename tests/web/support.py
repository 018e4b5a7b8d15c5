"""In-process page tests: the composed app (API + pages) over SQLite in tmp, driven by httpx.

Faster than the browser for the access matrix and the guard's edge cases; the browser tests cover
what only a browser shows (layout, scripts, accessibility).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from argon2 import PasswordHasher
from sqlalchemy import Engine

from cardsvc.api.services import db_services
from cardsvc.config import get_settings
from cardsvc.credential.keystore import open_key_store
from cardsvc.demo_data import ORGS
from cardsvc.registry.db import engine_for, session_factory, upgrade_to_head
from cardsvc.registry.keys import ensure_pii_keys
from cardsvc.registry.services import OrgService
from cardsvc.registry.staff import NewStaff, StaffAccounts
from cardsvc.verification.ratelimit import RateLimit
from cardsvc.verification.roles import Role
from cardsvc.web.app import Composed, create_web_app
from tests.support.browser import STAFF, STAFF_PASSWORD

T = TypeVar("T")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


@dataclass
class Site:
    """A synchronous face on an httpx client bound to the composed app; one cookie jar."""

    app: Composed
    engine: Engine
    runner: asyncio.Runner
    client: httpx.AsyncClient = field(init=False)
    # The runner's loop lives on its own thread: a Playwright sync driver started earlier in the
    # session keeps an event loop running on the test thread, where Runner.run() would refuse.
    worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="site"))

    def __post_init__(self) -> None:
        self.client = self.fresh_client()

    def fresh_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.worker.submit(self.runner.run, coro).result()

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.run(self.client.get(path, **kw))

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.run(self.client.post(path, **kw))

    def login(self, role: Role, *, password: str = STAFF_PASSWORD) -> httpx.Response:
        page = self.get("/login")
        return self.post("/login", data={"username": STAFF[role][0], "password": password,
                                         "csrf": csrf_in(page.text), "next": "/"})

    def csrf(self, path: str = "/") -> str:
        return csrf_in(self.get(path).text)


@contextmanager
def make_site(data_dir: Path) -> Iterator[Site]:
    settings = get_settings(env="dev", data_dir=data_dir)
    engine = engine_for(settings)
    upgrade_to_head(engine)
    ensure_pii_keys(open_key_store(settings))  # development PII keys (env=dev), as `cardsvc init --dev`
    OrgService(session_factory(engine)).import_orgs(ORGS)
    # A cheap argon2id cost for the suite's users (the hash carries its parameters, so the app's
    # verification runs the same code); the lock-out and hashing tests use the real defaults too.
    accounts = StaffAccounts(session_factory(engine),
                             hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    for role, (username, display, binding) in STAFF.items():
        accounts.create(NewStaff(username=username, display_name=display, role=role.value,
                                 password=STAFF_PASSWORD, **_binding(binding)))
    services = db_services(settings, rate_limit=RateLimit(burst=100_000, per_second=1e5))
    site = Site(create_web_app(settings, services=services), engine, asyncio.Runner())
    try:
        yield site
        site.run(site.client.aclose())
        site.run(services.aclose())
    finally:
        site.worker.submit(site.runner.close).result()
        site.worker.shutdown()
    engine.dispose()


def _binding(option: tuple[str, ...]) -> dict[str, str]:
    names = {"--service-point": "service_point_id", "--partner-base": "partner_base_id"}
    return {names[option[0]]: option[1]} if option else {}
