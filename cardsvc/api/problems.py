"""problem+json (RFC 9457) errors: ONE table from the cardsvc error tree to HTTP status.

Every error body is ``application/problem+json`` with ``type`` =
``https://cardsvc.example/problems/<code>``, ``title``, ``status``, ``detail`` and, where the error
has them, ``field`` / ``reason`` / ``retry_after``. Anything not in the table — an unexpected
exception or a cardsvc error that should never reach a client — becomes a 500 carrying only an
opaque ``error_id`` that matches the server log line; never a traceback or a message.

``KeyStoreError`` on a request (no key for this time or version, a store that cannot be read)
is an operator's matter, answered as ``NotConfigured`` (503, fixed message; details in the log).

``CredentialVerificationError`` is deliberately absent: a credential that fails verification is an
outcome (HTTP 200 with ``NOK`` and a reason code) that verify routes build themselves. If one ever
escapes a route it is a bug and shows as a 500.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardsvc import errors
from cardsvc.logging import get_logger

log = get_logger(__name__)

PROBLEM_BASE = "https://cardsvc.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# Most specific first; the first isinstance match wins.
HTTP_STATUS: tuple[tuple[type[errors.CardsvcError], int], ...] = (
    (errors.AuthenticationRequired, 401),
    (errors.PermissionDenied, 403),
    (errors.RateLimited, 429),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidRecord, 422),
    (errors.MalformedCredential, 422),
    (errors.NotConfigured, 503),
)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
               415: "unsupported_media_type"}


def status_for(exc: errors.CardsvcError) -> int | None:
    """The HTTP status for an error the client caused, or None (→ opaque 500)."""
    return next((status for cls, status in HTTP_STATUS if isinstance(exc, cls)), None)


def problem(
    status: int, code: str, detail: str = "", *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def internal_error(*, exc_info: bool = False) -> JSONResponse:
    """A 500 with a fresh opaque id, logged (with the traceback when ``exc_info``) under that id."""
    error_id = uuid.uuid4().hex
    log.error("internal error %s", error_id, exc_info=exc_info)
    return problem(500, "internal", "internal error; quote error_id to the operator", error_id=error_id)


def _extensions(exc: errors.CardsvcError) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for name in ("field", "reason", "retry_after"):
        value = getattr(exc, name, None)
        if value is not None:
            extra[name] = value
    return extra


def _headers(exc: errors.CardsvcError, *, token_sent: bool) -> dict[str, str]:
    if isinstance(exc, errors.RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, errors.AuthenticationRequired):
        invalid = ', error="invalid_token"' if token_sent else ""
        return {"WWW-Authenticate": f'Bearer realm="cardsvc"{invalid}'}
    return {}


def error_response(exc: errors.CardsvcError, path: str, *, token_sent: bool) -> JSONResponse:
    """The problem for a cardsvc error (the table above), or an opaque 500 for an unmapped one."""
    if isinstance(exc, errors.KeyStoreError):
        log.warning("key store on %s: %s", path, exc.diagnostics())
        exc = errors.NotConfigured()
    status = status_for(exc)
    if status is None:
        log.error("unmapped %s on %s: %s", type(exc).__name__, path, exc.diagnostics())
        return internal_error()
    return problem(status, exc.code, exc.message, headers=_headers(exc, token_sent=token_sent),
                   **_extensions(exc))


def validation_problem(details: Iterable[Mapping[str, Any]], *, prefix: tuple[str, ...] = ()) -> JSONResponse:
    """422 ``validation``: loc/msg/type only — pydantic's "input" would echo the caller's data
    (possibly personal) back."""
    errors_ = [{"loc": [*prefix, *e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
               for e in details]
    return problem(422, "validation", "the request does not match the schema", errors=errors_)


async def _cardsvc_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, errors.CardsvcError):
        return internal_error()
    return error_response(exc, request.url.path, token_sent="authorization" in request.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        return internal_error()
    return validation_problem(exc.errors())


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        return internal_error()
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers or {})
    return problem(exc.status_code, code, str(exc.detail), headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Register the three handlers; unexpected exceptions are caught by the request guard."""
    app.add_exception_handler(errors.CardsvcError, _cardsvc_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
