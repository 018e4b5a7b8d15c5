"""The two hot verification routes served as plain ASGI, before FastAPI sees the request.

``POST /v1/verify/qr`` and ``GET /v1/verify/sun`` are most of the traffic, and FastAPI's per-request
machinery (FastAPI 0.165's OpenTelemetry check, the middleware stack, route matching, dependency
solving, body and response-model validation) cost as much CPU as the verification itself. The app
(:class:`~cardsvc.api.app.CardsvcApp`) gives exactly those two method + path pairs to
:class:`HotRoutes` and everything else to FastAPI. The hot routes keep every rule of the FastAPI
routes: the request guard (413 / 415), the same admission (:func:`~cardsvc.api.auth.admit`: token,
rate limit, role — before the body is parsed, so FastAPI's quirk "malformed JSON beats 401" does
not apply here), the same pydantic request model (422 ``validation``), the same group-committed
check-then-write (:func:`checked_then_committed`), the same problem+json table and opaque 500, and
the same metrics labels. The FastAPI routes stay registered: the OpenAPI schema documents them, and
they answer when the app is built with ``hot_path=False`` (a test compares the two).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cardsvc.api.auth import admit
from cardsvc.api.guard import Refused, header, read_json_body
from cardsvc.api.metrics import HttpMetrics
from cardsvc.api.problems import error_response, internal_error, problem, validation_problem
from cardsvc.api.services import Services
from cardsvc.api.verify_schemas import SUN_PARAM_PATTERN, QrVerifyRequest, VerifyResponse
from cardsvc.errors import CardsvcError, NotConfigured
from cardsvc.logging import get_logger
from cardsvc.verification.service import Pending, VerificationService
from cardsvc.verification.tokens import ClientRecord
from cardsvc.verification.views import member_view

log = get_logger(__name__)

Handler = Callable[[VerificationService, ClientRecord, Scope, bytes], Awaitable[VerifyResponse]]


async def checked_then_committed(svc: VerificationService, client: ClientRecord,
                                 check: Callable[[Session], Pending]) -> VerifyResponse:
    """The check and the role's view only read (on SQLite before the write lock), then the writes
    in a group-committed transaction that also confirms the client; answered after the commit
    (``Database.run_checked``; the routes of ``auth.CONFIRMED_IN_COMMIT``)."""

    def read(session: Session) -> tuple[Pending, dict[str, Any] | None]:
        pending = check(session)
        return pending, member_view(session, pending.answer, client, svc.cipher, tz=svc.zone)

    def write(session: Session, checked: tuple[Pending, dict[str, Any] | None]) -> VerifyResponse:
        pending, view = checked
        result = svc.commit(session, pending)
        return VerifyResponse.of(result, view if result is pending.answer else None)  # replay: nobody

    return await svc.db.run_checked(read, write, client_id=client.client_id)


async def verify_qr(svc: VerificationService, client: ClientRecord, _scope: Scope,
                    body: bytes) -> VerifyResponse:
    try:
        qr = QrVerifyRequest.model_validate_json(body).qr
    except ValidationError as exc:
        raise _Invalid(exc.errors(include_input=False), ("body",)) from None
    return await checked_then_committed(svc, client, lambda s: svc.check_qr(s, actor=client.client_id,
                                                                              qr_text=qr))


async def verify_sun(svc: VerificationService, client: ClientRecord, scope: Scope,
                     _body: bytes) -> VerifyResponse:
    query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))  # last wins
    params = {name: query.get(name) for name in ("p", "m")}
    problems = [_query_error(name, value) for name, value in params.items()]
    if any(problems):
        raise _Invalid([p for p in problems if p is not None], ())
    picc, mac = str(params["p"]), str(params["m"])
    return await checked_then_committed(svc, client, lambda s: svc.check_sun_params(
        s, actor=client.client_id, picc=picc, mac=mac))


def _query_error(name: str, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return {"loc": ("query", name), "msg": "Field required", "type": "missing"}
    if not SUN_PARAM_PATTERN.fullmatch(value):
        return {"loc": ("query", name), "msg": f"String should match pattern '{SUN_PARAM_PATTERN.pattern}'",
                "type": "string_pattern_mismatch"}
    return None


class _Invalid(Exception):  # a 422 inside this module, never leaves it
    def __init__(self, details: list[Any], prefix: tuple[str, ...]) -> None:
        super().__init__("invalid request")
        self.details, self.prefix = details, prefix


@dataclass(frozen=True, slots=True)
class HotRoute:
    name: str  # the FastAPI route name: its access policy, and CONFIRMED_IN_COMMIT
    template: str  # the metrics label, as FastAPI's route path
    handler: Handler


HOT_ROUTES: dict[tuple[str, str], HotRoute] = {
    ("POST", "/v1/verify/qr"): HotRoute("verify_qr", "/v1/verify/qr", verify_qr),
    ("GET", "/v1/verify/sun"): HotRoute("verify_sun_json", "/v1/verify/sun", verify_sun),
}


class HotRoutes:
    """Serves the routes of :data:`HOT_ROUTES`; :class:`~cardsvc.api.app.CardsvcApp` asks
    :meth:`route_for` before FastAPI sees a request (FastAPI's own per-request work — telemetry
    checks, middleware stack, routing — included)."""

    def __init__(self, *, services: Services, metrics: HttpMetrics, max_body: int) -> None:
        self.services, self.metrics, self.max_body = services, metrics, max_body

    @staticmethod
    def route_for(scope: Scope) -> HotRoute | None:
        return HOT_ROUTES.get((scope["method"], scope["path"])) if scope["type"] == "http" else None

    async def serve(self, route: HotRoute, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        response = await self._answer(route, scope, receive)
        try:
            await response(scope, receive, send)
        finally:
            self.metrics.observe(scope["method"], route.template, response.status_code,
                                 time.perf_counter() - start)

    async def _answer(self, route: HotRoute, scope: Scope, receive: Receive) -> Response:
        authorization = header(scope, b"authorization")
        try:
            body = await read_json_body(scope, receive, self.max_body) if scope["method"] == "POST" else b""
            client = await admit(self.services, route.name, authorization)
            svc = self.services.verification
            if svc is None:
                log.warning("this server runs without a database: verification routes are unavailable")
                raise NotConfigured
            result = await route.handler(svc, client, scope, body)
        except Refused as refused:
            return problem(refused.status, refused.code, refused.detail)
        except _Invalid as invalid:
            return validation_problem(invalid.details, prefix=invalid.prefix)
        except CardsvcError as exc:
            return error_response(exc, scope["path"], token_sent=authorization is not None)
        except Exception:
            return internal_error(exc_info=True)
        return Response(result.model_dump_json(), media_type="application/json")
