"""Errors on pages: a page with a catalog message, never a traceback; login problems redirect.

One table maps the cardsvc error tree to (HTTP status, catalog key); anything else is a 500 page
with an opaque id that matches the server log line (as the API's problem+json does).
"""

from __future__ import annotations

import uuid
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardsvc import errors
from cardsvc.logging import get_logger
from cardsvc.web.render import render, secured
from cardsvc.web.session import CsrfRefused, LoginRequired, safe_next

log = get_logger(__name__)

# Most specific first; the first isinstance match wins. (status, catalog key)
PAGE_ERRORS: tuple[tuple[type[errors.CardsvcError], int, str], ...] = (
    (CsrfRefused, 403, "error.csrf"),
    (errors.PermissionDenied, 403, "error.forbidden"),
    (errors.RateLimited, 429, "error.rate_limited"),
    (errors.NotFound, 404, "error.not_found"),
    (errors.Conflict, 409, "error.conflict"),
    (errors.InvalidRecord, 422, "error.invalid"),
    (errors.ImportFileError, 422, "error.invalid"),
    (errors.NotConfigured, 503, "error.not_configured"),
    (errors.IssuanceError, 409, "error.generic"),
)
_HTTP_KEYS = {404: "error.not_found", 405: "error.not_found", 413: "error.too_large"}


def error_page(request: Request, status: int, key: str, **values: object) -> Response:
    values.setdefault("detail", "")
    return render(request, "error.html", status=status, message_key=key, values=values)


def internal_error_page(request: Request, *, exc_info: bool = True) -> Response:
    error_id = uuid.uuid4().hex
    log.error("page error %s on %s", error_id, request.url.path, exc_info=exc_info)
    return error_page(request, 500, "error.internal", error_id=error_id)


def login_redirect(request: Request, reason: str) -> Response:
    """To the login page, remembering the page (a GET's own URL, a POST's form page)."""
    if request.method == "GET":
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        referer = urlsplit(request.headers.get("referer", ""))
        same = referer.netloc in ("", request.url.netloc)
        back = safe_next(referer.path + (f"?{referer.query}" if referer.query else "") if same else "/")
    return secured(RedirectResponse(f"/login?why={reason}&next={quote(back, safe='/')}", status_code=303))


async def _cardsvc_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return login_redirect(request, exc.reason)
    if not isinstance(exc, errors.CardsvcError):
        return internal_error_page(request)
    for cls, status, key in PAGE_ERRORS:
        if isinstance(exc, cls):
            return error_page(request, status, key, detail=exc.message)
    log.error("unmapped %s on page %s: %s", type(exc).__name__, request.url.path, exc.diagnostics())
    return internal_error_page(request, exc_info=False)


async def _validation_error(request: Request, exc: Exception) -> Response:
    fields = []
    if isinstance(exc, RequestValidationError):
        fields = [str(e.get("loc", ("",))[-1]) for e in exc.errors()]  # names only, never the input
    return error_page(request, 422, "error.invalid", detail=", ".join(fields))


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    return error_page(request, status, _HTTP_KEYS.get(status, "error.not_found"))


async def _unexpected(request: Request, _exc: Exception) -> Response:
    return internal_error_page(request)


def install_page_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.CardsvcError, _cardsvc_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
