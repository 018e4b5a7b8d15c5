"""The signed-in staff user as the verification workflows see them: a client bound to its place.

The service-point and partner pages call the same workflows as the API (``cardsvc.verification``).
Those take a :class:`~cardsvc.verification.tokens.ClientRecord`; a page user becomes one named
``web:<staff id>`` (≤ 12 characters, the width of the ``client_id`` columns of service records and
check-ins), with the user's role and binding. A user whose account names no place for a bound role
fails loudly (``InvalidRecord`` from the record's own check), never acts everywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from cardsvc.api.services import Services
from cardsvc.errors import CardsvcError, NotConfigured
from cardsvc.logging import get_logger
from cardsvc.verification.roles import Role
from cardsvc.verification.service import VerificationService
from cardsvc.verification.tokens import ClientRecord
from cardsvc.web.i18n import translate
from cardsvc.web.render import SECURITY_HEADERS, lang_of
from cardsvc.web.session import PageUser, user_of

log = get_logger(__name__)

WEB_ACTOR_PREFIX = "web:"
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def web_actor(user: PageUser) -> str:
    """The audit actor and client id of a page user (``web:<staff id>``)."""
    return f"{WEB_ACTOR_PREFIX}{user.staff.id}"


def client_for(user: PageUser) -> ClientRecord:
    """The page user as a bound client of its role."""
    staff = user.staff
    return ClientRecord(
        client_id=web_actor(user), label=f"web page user {staff.username}", role=user.role,
        token_hash=b"", created_at=_EPOCH,
        service_point_id=staff.service_point_id if user.role is Role.service_point else None,
        partner_base_id=staff.partner_base_id if user.role is Role.partner else None)


def acting(request: Request) -> tuple[ClientRecord, VerificationService]:
    """This request's user as a client, and the verification workflows of the app."""
    return client_for(user_of(request)), verification_of(request)


def verification_of(request: Request) -> VerificationService:
    services = request.app.state.services
    if not isinstance(services, Services) or services.verification is None:
        log.warning("the pages have no verification workflows (database services not configured)")
        raise NotConfigured
    return services.verification


def reason_of(exc: CardsvcError) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else exc.code


def json_answer(body: dict[str, Any] | list[dict[str, Any]], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=SECURITY_HEADERS)


def json_refusal(request: Request, status: int, reason: str) -> JSONResponse:
    """A refusal a page script shows as it is: the reason code and its catalog message."""
    return json_answer({"error": reason, "message": reason_message(request, reason)}, status)


def reason_message(request: Request, reason: str) -> str:
    """The catalog message of a verification or check-in reason (a generic one for the rest)."""
    lang = lang_of(request)
    try:
        return translate(lang, f"why.{reason}")
    except KeyError:
        return translate(lang, "why.other", reason=reason)
