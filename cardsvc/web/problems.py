"""Errors on pages: a page with a catalog message, never a traceback; login problems redirect.

One table maps the cardsvc error tree to an HTTP status; anything else is a 500 page with an opaque
id that matches the server log line (as the API's problem+json does). The text shown comes from the
catalog, never from the exception: :func:`page_problem` looks up ``problem.<code>.<reason>``, then
``problem.<code>``, then the generic ``problem.other`` with the code. An error's own message is
English, may name internals (a file path, a Python class) and goes to the log only. A refused form
field (an :class:`~cardsvc.errors.InvalidRecord`, or the form's own validation) is shown as its
label and a short reason, both from the catalog (``field.<name>``, ``invalid.<reason>``). An
:class:`~cardsvc.errors.ImportFileError`'s ``columns`` (the header labels a member list lacks or
repeats, as the import template spells them) are shown as ``{detail}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardsvc import errors
from cardsvc.logging import get_logger
from cardsvc.web.i18n import MESSAGES, Phrase
from cardsvc.web.render import render, secured
from cardsvc.web.session import CsrfRefused, LoginRequired, safe_next

log = get_logger(__name__)

# Most specific first; the first isinstance match wins. Errors not named here (broken PII or audit
# integrity, card and crypto errors) are internal: a 500 page with an id, the details in the log.
PAGE_ERRORS: tuple[tuple[type[errors.CardsvcError], int], ...] = (
    (CsrfRefused, 403),
    (errors.PermissionDenied, 403),
    (errors.RateLimited, 429),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidRecord, 422),
    (errors.ImportFileError, 422),
    (errors.NotConfigured, 503),
    (errors.IssuanceError, 409),
    (errors.ServerUnavailable, 503),
    (errors.CredentialError, 422),  # pages that verify catch these themselves; this is the backstop
)
REGISTRY_UNAVAILABLE = 503  # a bare RegistryError: the database did not answer (registry.services)
GENERIC_PROBLEM = "problem.other"
# The number a reason's message names, from pydantic's error context (a bound, never the input).
REASON_LIMITS = {"string_too_long": "max_length", "string_too_short": "min_length",
                 "greater_than_equal": "ge", "less_than_equal": "le"}
COLUMN_SEPARATOR = "、"  # between the column labels a refused member list lacks (Chinese labels)
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
    status = page_status(exc)
    if status is None:
        log.error("unmapped %s on page %s: %s", type(exc).__name__, request.url.path, exc.diagnostics())
        return internal_error_page(request, exc_info=False)
    log.info("page %s refused (%s): %s", request.url.path, exc.code, exc.diagnostics())
    key, values = page_problem(exc)
    response = error_page(request, status, key, **values)
    if isinstance(exc, errors.RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def page_status(exc: errors.CardsvcError) -> int | None:
    """The HTTP status of an error a page may show, ``None`` for an internal one."""
    for cls, status in PAGE_ERRORS:
        if isinstance(exc, cls):
            return status
    return REGISTRY_UNAVAILABLE if type(exc) is errors.RegistryError else None


def page_problem(exc: errors.CardsvcError) -> tuple[str, dict[str, object]]:
    """(catalog key, values) of the message a page shows for ``exc`` (never its own text)."""
    values: dict[str, object] = {"code": exc.code}
    if isinstance(exc, errors.RateLimited):
        values["retry_after"] = exc.retry_after
    if isinstance(exc, errors.InvalidRecord):
        values["detail"] = invalid_field(exc.field, exc.reason, value=exc.value)  # English: the log only
    if isinstance(exc, errors.ImportFileError):
        values["detail"] = COLUMN_SEPARATOR.join(exc.columns)  # header labels, never cell data
    reason = getattr(exc, "reason", None)
    keys = ([f"problem.{exc.code}.{reason}"] if reason else []) + [f"problem.{exc.code}"]
    return next((key for key in keys if key in MESSAGES), GENERIC_PROBLEM), values


def field_name(name: str) -> Phrase | str:
    """A form field's label in the catalog (``field.<name>``), else its name as the form sends it."""
    key = f"field.{name}"
    return Phrase(key) if key in MESSAGES else name


def invalid_field(name: str, reason: str, limits: Mapping[str, object] | None = None, *,
                  value: str = "") -> Phrase:
    """``<field label>: <short reason> (<value typed>)`` from the catalog: ``invalid.<field>.<reason>``,
    else ``invalid.<reason>``, else the generic ``invalid.invalid``. ``limits`` fill a reason's
    numbers; ``value`` is what the user typed (an InvalidRecord's, never pydantic's input)."""
    limits = limits or {}
    keys = (f"invalid.{name}.{reason}", f"invalid.{reason}")
    found = next((key for key in keys if key in MESSAGES), "invalid.invalid")
    needed = REASON_LIMITS.get(reason)
    if needed is not None and needed not in limits:  # a bound the message names but nobody gave
        found, limits = "invalid.invalid", {}
    parts: dict[str, object] = {"field": field_name(name), "reason": Phrase(found, limits)}
    return Phrase("invalid.item_value", {**parts, "value": value}) if value else Phrase("invalid.item", parts)


def validation_details(exc: RequestValidationError) -> tuple[Phrase, ...]:
    """Each refused form field once, with pydantic's error type as the reason (never the input)."""
    details: dict[str, Phrase] = {}
    for error in exc.errors():
        names = [str(part) for part in error.get("loc", ()) if isinstance(part, str) and part != "body"]
        name = names[-1] if names else ""
        context = error.get("ctx") or {}
        limits = {k: v for k, v in context.items()
                  if k in REASON_LIMITS.values() and isinstance(v, int | float) and not isinstance(v, bool)}
        details.setdefault(name, invalid_field(name, str(error.get("type", "invalid")), limits))
    return tuple(details.values())


async def _validation_error(request: Request, exc: Exception) -> Response:
    details = validation_details(exc) if isinstance(exc, RequestValidationError) else ()
    return error_page(request, 422, "error.invalid", detail=details)


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
