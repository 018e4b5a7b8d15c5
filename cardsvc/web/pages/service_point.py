"""Service-point pages (issue #6 item 4): the tap screen, record a service, today and the month.

* ``/point``: verify a QR (typed or from a scanner that types) or a phone tap's SUN URL; the screen
  also follows taps at the point's terminal (``cardsvc tap``) by polling ``/point/latest``, and
  shows the member as the service-point role may see them (name, organisation, recent services).
* ``/point/sun?p=…&m=…``: the phone-tap page — the card's SUN link opened on this host by a staff
  phone signed in as the point — verifies and opens the tap screen with the member.
* ``/point/record``: record one of the point's items for the member on the screen.
* ``/point/records``: today's records and the month's statistics (inline SVG bar charts).

Verifying and recording are POST forms with a one-time nonce (``StaffAccounts.once``): a second
submission shows the first result and records nothing more (the nonce is also the service record's
Idempotency-Key).
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from cardsvc.api.verify_schemas import SUN_PARAM_PATTERN
from cardsvc.errors import Conflict, CredentialError, NotConfigured, NotFound
from cardsvc.verification.outcome import Verdict
from cardsvc.web.acting import acting, json_answer, reason_message, reason_of
from cardsvc.web.context import web_of
from cardsvc.web.forms import submit_once
from cardsvc.web.render import render, secured
from cardsvc.web.service_point import PointDesk, bar_lengths

router = APIRouter(prefix="/point")
NonceField = Annotated[str, Form(max_length=64)]
SunParam = Annotated[str, Query(pattern=SUN_PARAM_PATTERN.pattern)]
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_CARD = re.compile(r"^\d{1,16}$")
_REASON = re.compile(r"^[a-z0-9_]{1,48}$")
CHART_LENGTH = 300


def _point(request: Request) -> PointDesk:
    client, svc = acting(request)
    return PointDesk(svc, client, tz=web_of(request).settings.zone)


def _tap_url(request: Request, **query: str) -> str:
    base = str(request.url_for("sp_tap").path)
    return base + ("?" + "&".join(f"{k}={quote(v)}" for k, v in query.items()) if query else "")


def _go(request: Request, **query: str) -> Response:
    """To the tap screen (the member, or why not)."""
    return secured(RedirectResponse(_tap_url(request, **query), status_code=303))


@router.get("", name="sp_tap")
def tap_screen(request: Request, card: str = "", refused: str = "", recorded: str = "") -> Response:
    point = _point(request)
    shown = point.shown(card) if _CARD.fullmatch(card) else None
    refusal = refused if _REASON.fullmatch(refused) else ""
    latest = point.latest()
    return render(request, "service_point/tap.html", point_name=point.point_name(), shown=shown,
                  asked=card[:16], items=point.items(), refused=refusal,
                  refused_message=reason_message(request, refusal) if refusal else "",
                  recorded=recorded[:50], seen=latest.seq if latest else 0)


@router.post("/verify", name="sp_verify")
def verify(request: Request, nonce: NonceField, text: Annotated[str, Form(max_length=1000)]) -> Response:
    point = _point(request)

    def work() -> str:
        result = point.verify(text)
        if result.verdict is Verdict.NOK or result.card_number is None:
            return _tap_url(request, refused=result.reason or "not_ok")
        return _tap_url(request, card=result.card_number)

    try:
        return submit_once(request, nonce, work)
    except (CredentialError, NotFound, Conflict, NotConfigured) as exc:
        reason = reason_of(exc)
        return secured(RedirectResponse(_tap_url(request, refused=reason[:48]), status_code=303))


@router.get("/sun", name="sp_sun")
def phone_tap(request: Request, p: SunParam, m: SunParam) -> Response:
    """The phone-tap page: the card's SUN link opened on this host by a signed-in staff phone."""
    point = _point(request)
    try:
        result = point.verify(f"{request.url.scheme}://{request.url.netloc}/t?p={p}&m={m}")
    except (CredentialError, NotFound, Conflict, NotConfigured) as exc:
        return _go(request, refused=reason_of(exc)[:48])
    if result.verdict is Verdict.NOK or result.card_number is None:
        return _go(request, refused=result.reason or "not_ok")
    return _go(request, card=result.card_number)


@router.get("/latest", name="sp_latest")
def latest(request: Request) -> Response:
    """The newest verification at this point (the tap screen polls it)."""
    found = _point(request).latest()
    if found is None:
        return json_answer({"seq": 0})
    ok = found.outcome in ("ok", "check")
    target = _tap_url(request, card=found.card_number) if ok else _tap_url(request, refused=found.reason)
    return json_answer({"seq": found.seq, "outcome": found.outcome, "url": target,
                        "message": "" if ok else reason_message(request, found.reason)})


@router.post("/record", name="sp_record")
def record(request: Request, nonce: NonceField, card: Annotated[str, Form(pattern=r"^\d{1,16}$")],
           item: Annotated[str, Form(max_length=32)], via: Annotated[str, Form(max_length=64)]) -> Response:
    point = _point(request)

    def work() -> str:
        done = point.record(card_number=card, item=item, via=via, key=nonce)
        return _tap_url(request, card=card, recorded=done.item_code)

    try:
        return submit_once(request, nonce, work)
    except (Conflict, NotFound) as exc:
        return secured(RedirectResponse(_tap_url(request, card=card, refused=reason_of(exc)[:48]), 303))


@router.get("/records", name="sp_records")
def records(request: Request, month: str = "") -> Response:
    point = _point(request)
    shown_month = month if _MONTH.fullmatch(month) else point.this_month()
    per_item, per_month = point.month_items(shown_month), point.months()
    return render(request, "service_point/records.html", point_name=point.point_name(), today=point.today(),
                  month=shown_month, per_item=per_item, per_month=per_month,
                  item_heights=bar_lengths(per_item, CHART_LENGTH),
                  month_heights=bar_lengths(per_month, CHART_LENGTH), chart_length=CHART_LENGTH,
                  total=sum(b.count for b in per_item))
