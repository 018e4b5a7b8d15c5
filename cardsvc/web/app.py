"""The composed app: staff pages (this package) in front of the JSON API, one ASGI callable.

``cardsvc serve`` runs ``cardsvc.web.app:app_from_env`` (a uvicorn factory). :class:`Composed` sends
a request to the pages when its first path segment is one the pages own (``/``, ``/login``,
``/desk/…``, ``/static/…`` — taken from the pages app's own routes, so a new page section needs no
extra table) and everything else, unchanged, to the API built by :func:`cardsvc.api.app.create_app`
(its routes, guard, metrics and problem+json stay as they are). Lifespan events go to the API.

The pages app has its own guard (:func:`cardsvc.web.session.guard`: session, role, CSRF), its own
error pages, a larger body limit for member-list uploads, and refuses to start with a page route
missing from :data:`cardsvc.web.access.PAGES`. At shutdown the pages close their own login limiter
(a Redis client when ``CARDSVC_REDIS_URL`` is set) after the API's services.
"""

from __future__ import annotations

import gc
import importlib

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardsvc.api.app import api_routes, create_app
from cardsvc.api.services import Services, db_services
from cardsvc.config import Settings, get_settings
from cardsvc.errors import ConfigError
from cardsvc.logging import configure, get_logger
from cardsvc.registry.db import engine_for, session_factory
from cardsvc.registry.staff import StaffAccounts
from cardsvc.verification.ratelimit import RateLimit
from cardsvc.web.access import PAGES
from cardsvc.web.context import WebContext
from cardsvc.web.limits import BodyLimit
from cardsvc.web.problems import install_page_handlers
from cardsvc.web.render import STATIC_DIR
from cardsvc.web.session import guard

log = get_logger(__name__)

# Each module exposes ``router``; add a module here to add its pages (docs/web.md).
PAGE_MODULES = (
    "cardsvc.web.pages.auth",
    "cardsvc.web.pages.admin",
    "cardsvc.web.pages.admin_setup",
    "cardsvc.web.pages.desk",
    "cardsvc.web.pages.service_point",
    "cardsvc.web.pages.partner",
)


def create_pages(settings: Settings, services: Services) -> FastAPI:
    """The pages app alone (tests use it through :func:`create_web_app`)."""
    engine = services.verification.db.engine if services.verification else engine_for(settings)
    sessions = session_factory(engine)
    pages = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(guard)])
    pages.state.web = WebContext(settings=settings, sessions=sessions, accounts=StaffAccounts(sessions))
    pages.state.services = services
    for name in PAGE_MODULES:
        pages.include_router(importlib.import_module(name).router)
    pages.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_page_handlers(pages)
    pages.add_middleware(BodyLimit)
    _check_pages(pages)
    return pages


def _check_pages(pages: FastAPI) -> None:
    """Refuse to build pages with a route the access table does not name."""
    missing = sorted(r.name for r in api_routes(pages) if r.name not in PAGES)
    if missing:
        raise ConfigError(f"pages without an access policy: {', '.join(missing)}")


def sections_of(pages: FastAPI) -> frozenset[str]:
    """First path segments the pages own (``""`` for the root page), from its routes and mounts."""
    paths = [r.path for r in api_routes(pages)] + [r.path for r in pages.routes if isinstance(r, Mount)]
    return frozenset(p.lstrip("/").split("/", 1)[0] for p in paths)


class Composed:
    """Dispatch each request to the pages or to the API by its first path segment."""

    def __init__(self, pages: FastAPI, api: FastAPI) -> None:
        self.pages, self.api = pages, api
        self.sections = sections_of(pages)
        self.state = api.state  # tests and tools reach the API's services as before

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.api(scope, receive, self._closing_pages(send))
            return
        target: ASGIApp = self.api
        if scope["type"] == "http":
            first = scope["path"].lstrip("/").split("/", 1)[0]
            if first in self.sections:
                target = self.pages
        await target(scope, receive, send)


    def _closing_pages(self, send: Send) -> Send:
        """The API runs the lifespan (and closes the services); the pages' own resources close just
        before the shutdown is reported, so the server never exits with their connections open."""

        async def sending(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                try:
                    await web_context(self.pages).aclose()
                except Exception:  # closing must not stop the shutdown
                    log.warning("the pages' login limiter did not close", exc_info=True)
            await send(message)

        return sending


def web_context(pages: FastAPI) -> WebContext:
    context = pages.state.web
    if not isinstance(context, WebContext):
        raise TypeError("pages.state.web is not a WebContext")
    return context


def create_web_app(settings: Settings, *, services: Services) -> Composed:
    """The API and the pages over the same services (database, key store, rate limits)."""
    return Composed(create_pages(settings, services), create_app(settings, services=services))


def app_from_env() -> Composed:
    """The uvicorn factory of ``cardsvc serve``: settings from the environment, database services."""
    settings = get_settings()
    configure(settings.log_level)
    limit = RateLimit(burst=settings.rate_limit_burst, per_second=settings.rate_limit_per_second)
    app = create_web_app(settings, services=db_services(settings, rate_limit=limit))
    settle_heap()
    return app


def settle_heap() -> None:
    """Move everything built so far (modules, the app, statements, keys) out of the garbage
    collector's sight: a full collection then scans only what requests left behind. Without it the
    occasional full collection of a worker's ~200,000 start-up objects stalled every request in flight
    for tens of milliseconds (verify p99 93 ms → 12 ms under load, tools/bench_verify.py)."""
    gc.collect()
    gc.freeze()
