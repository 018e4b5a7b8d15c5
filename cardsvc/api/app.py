"""The FastAPI app factory. No globals: settings and services are arguments, kept on ``app.state``.

``uvicorn.run("cardsvc.api.app:app_from_env", factory=True)`` builds one app per worker from
``CARDSVC_*``. OpenAPI (``/docs``, ``/redoc``, ``/openapi.json``) is off when ``env=production``;
serving it to admins only is left for later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from cardsvc import __version__
from cardsvc.api.auth import authorize
from cardsvc.api.guard import DEFAULT_MAX_BODY, RequestGuard
from cardsvc.api.hotpath import HotRoutes
from cardsvc.api.metrics import HttpMetrics, MetricsMiddleware
from cardsvc.api.pages import tap
from cardsvc.api.problems import install_handlers
from cardsvc.api.routes import clients, health, partner, service, verify
from cardsvc.api.schemas import ERROR_RESPONSES
from cardsvc.api.services import Services, db_services, in_memory_services
from cardsvc.config import Environment, Settings, get_settings
from cardsvc.errors import ConfigError
from cardsvc.logging import configure
from cardsvc.verification.ratelimit import RateLimit
from cardsvc.verification.roles import ROUTE_POLICIES


class CardsvcApp(FastAPI):
    """FastAPI, except that the hot verification routes (:mod:`cardsvc.api.hotpath`) are answered
    before FastAPI's per-request machinery runs."""

    hot: HotRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot
        route = hot.route_for(scope) if hot is not None else None
        if hot is None or route is None:
            await super().__call__(scope, receive, send)
        else:
            await hot.serve(route, scope, receive, send)


def create_app(
    settings: Settings, *, services: Services | None = None, max_body: int = DEFAULT_MAX_BODY,
    hot_path: bool = True,
) -> FastAPI:
    """Build the API for ``settings`` with ``services`` (in-memory ones when not given).

    ``hot_path``: the two hot verification routes are answered by :class:`HotRoutes` in front of
    FastAPI (same rules, a fraction of the CPU); ``False`` leaves them to their FastAPI routes."""
    services = services or in_memory_services(settings)
    docs = settings.env is not Environment.production

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await services.aclose()

    app = CardsvcApp(
        title="cardsvc",
        version=__version__,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        dependencies=[Depends(authorize)],
        responses=ERROR_RESPONSES,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = services
    app.state.metrics = HttpMetrics()
    # The verification routes first: FastAPI tries included routers in order (~10 µs each), and
    # no path of one router shadows another's.
    for router in (verify.router, health.router, clients.router, service.router, partner.router, tap.router):
        app.include_router(router)
    install_handlers(app)
    app.add_middleware(RequestGuard, max_body=max_body)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if hot_path:
        app.hot = HotRoutes(services=services, metrics=app.state.metrics, max_body=max_body)
    _check_policies(app)
    return app


@dataclass(frozen=True, slots=True)
class RouteInfo:
    name: str
    path: str
    methods: frozenset[str]


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every API route of ``app`` (through included routers), for the policy check and the tests."""
    found: list[RouteInfo] = []
    for context in _route_contexts(app):
        original = getattr(context, "original_route", context)
        if isinstance(original, APIRoute):
            found.append(RouteInfo(original.name, original.path, frozenset(original.methods or ())))
    return found


def _route_contexts(app: FastAPI) -> Iterable[object]:
    try:  # FastAPI >= 0.16x keeps included routers nested; this walks them
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def _check_policies(app: FastAPI) -> None:
    """Refuse to build an app with a route the permission table does not name."""
    missing = sorted(r.name for r in api_routes(app) if r.name not in ROUTE_POLICIES)
    if missing:
        raise ConfigError(f"routes without an access policy: {', '.join(missing)}")


def app_from_env() -> FastAPI:
    """The uvicorn factory: settings from the environment, database-backed services."""
    settings = get_settings()
    configure(settings.log_level)
    limit = RateLimit(burst=settings.rate_limit_burst, per_second=settings.rate_limit_per_second)
    return create_app(settings, services=db_services(settings, rate_limit=limit))
