"""API test fixtures: the real app on an in-memory ASGI transport (httpx), one event loop per test.

Starlette's TestClient is not used: importing it warns (deprecated httpx backend), and the suite
turns warnings into errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from cardsvc.api.app import create_app
from cardsvc.api.services import Services, in_memory_services
from cardsvc.config import Settings, get_settings
from cardsvc.verification.ratelimit import RateLimit
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import create_client, revoke_client

T = TypeVar("T")

BINDINGS: dict[Role, dict[str, str]] = {
    Role.service_point: {"service_point_id": "sp-xicheng-01"},
    Role.partner: {"partner_base_id": "base-beidaihe"},
}


@dataclass
class Api:
    """A synchronous face on an async httpx client bound to one app."""

    app: FastAPI
    runner: asyncio.Runner
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    @property
    def services(self) -> Services:
        services = self.app.state.services
        assert isinstance(services, Services)
        return services

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def request(self, method: str, path: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.run(self.client.request(method, path, headers=headers, **kw))

    def token(self, role: Role, *, revoked: bool = False) -> str:
        issued = self.run(create_client(self.services.clients, label=f"test {role.value}", role=role,
                                        **BINDINGS.get(role, {})))
        if revoked:
            self.run(revoke_client(self.services.clients, issued.client.client_id))
        return issued.token


@contextmanager
def make_api(settings: Settings, *, rate_limit: RateLimit | None = None) -> Iterator[Api]:
    services = in_memory_services(settings, rate_limit=rate_limit or RateLimit(burst=10_000, per_second=1e4))
    with asyncio.Runner() as runner:
        api = Api(create_app(settings, services=services), runner)
        yield api
        runner.run(api.client.aclose())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings(env="test", data_dir=tmp_path)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with make_api(settings) as made:
        yield made
