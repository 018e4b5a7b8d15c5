"""Partner-base pages (issue #6 item 5): verify a guest, check in / out, today's guests, offline.

* ``/partner``: scan the guest's QR with the camera (jsQR over getUserMedia) or type it; the phone
  tap page for a receptionist's phone is ``/partner/sun?p=…&m=…`` (the card's URL on this host).
  The page shows what the partner role may see — masked name, last 4 ID digits, eligibility and
  quota — and checks the guest in with an Idempotency-Key made when the result is shown (a double
  submit is answered with the first check-in).
* Offline (``static/js/partner.js`` with the modules of ``static/js/offline/``): the page keeps the
  trust bundle and the programme's eligibility list, verifies with them when the network is gone,
  queues check-ins and sends them to ``/partner/sync`` when it is back.
* ``/partner/guests``: today's guests and those still in, with check-out.

JSON endpoints answer refusals as ``{"error": reason, "message": text}`` (the catalog's words).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Header, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from cardsvc.api.verify_schemas import (
    CODE,
    IDEMPOTENCY_KEY,
    SUN_PARAM_PATTERN,
    CheckinRequestBody,
    SyncRequest,
)
from cardsvc.errors import CardsvcError, Conflict, CredentialError, NotConfigured, NotFound, PermissionDenied
from cardsvc.web.acting import acting, json_answer, json_refusal, reason_of
from cardsvc.web.context import web_of
from cardsvc.web.partner import BaseDesk, GuestCheck, bundle_anchor
from cardsvc.web.render import STATIC_DIR, render, secured
from cardsvc.web.session import flash, user_of

router = APIRouter(prefix="/partner")
BUNDLE_MEDIA_TYPE = 'application/cose; cose-type="cose-sign1"'
SunParam = Annotated[str, Query(pattern=SUN_PARAM_PATTERN.pattern)]
_STATUS = ((PermissionDenied, 403), (NotFound, 404), (Conflict, 409), (CredentialError, 422),
           (NotConfigured, 503))


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)


def _base(request: Request) -> BaseDesk:
    client, svc = acting(request)
    return BaseDesk(svc, client, tz=web_of(request).settings.zone)


def _refused(request: Request, exc: CardsvcError) -> Response:
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
    return json_refusal(request, status, reason_of(exc))


def _desk_page(request: Request, preset: GuestCheck | None = None, refused: str = "") -> Response:
    base = _base(request)
    now = datetime.now(UTC)
    return render(request, "partner/verify.html", vendor=("jsQR.js",), base_name=base.base_name(),
                  programmes=base.programmes(), anchor=bundle_anchor(web_of(request).key_store, now),
                  preset=preset.as_json() if preset else None, refused=refused)


@router.get("", name="partner_desk")
def desk(request: Request) -> Response:
    return _desk_page(request)


@router.get("/sun", name="partner_sun")
def phone_tap(request: Request, p: SunParam, m: SunParam) -> Response:
    """The phone-tap page: the card's SUN URL opened on this host by a signed-in receptionist."""
    try:
        found = _base(request).verify(f"{request.url.scheme}://{request.url.netloc}/t?p={p}&m={m}")
    except (CredentialError, NotFound, Conflict, NotConfigured) as exc:
        return _desk_page(request, refused=reason_of(exc))
    return _desk_page(request, preset=found)


@router.post("/verify", name="partner_verify")
def verify(request: Request, body: VerifyBody) -> Response:
    try:
        return json_answer(_base(request).verify(body.text).as_json())
    except (CredentialError, NotFound, Conflict, NotConfigured) as exc:
        return _refused(request, exc)


@router.post("/checkin", name="partner_checkin")
def checkin(request: Request, body: CheckinRequestBody,
            key: Annotated[str, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY)]) -> Response:
    try:
        done = _base(request).check_in(body.programme, body.qr, key)
    except (PermissionDenied, NotFound, Conflict, CredentialError) as exc:
        return _refused(request, exc)
    return json_answer({"checkin_id": done.checkin_id, "programme": done.programme, "replayed": done.replayed,
                        "quota_left": done.quota_left}, 200 if done.replayed else 201)


@router.post("/checkout/{checkin_id}", name="partner_checkout")
def checkout(request: Request, checkin_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
             nonce: Annotated[str, Form(max_length=64)]) -> Response:
    base = _base(request)

    def work() -> str:
        base.check_out(checkin_id)
        return str(request.url_for("partner_guests").path) + "?out=1"

    try:
        target, first = web_of(request).accounts.once(user_of(request).staff, nonce, work)
    except Conflict:
        target, first = str(request.url_for("partner_guests").path) + "?out=again", True
    response = secured(RedirectResponse(target, status_code=303))
    if not first:
        flash(request, response, "error.duplicate")
    return response


@router.get("/guests", name="partner_guests")
def guests(request: Request, out: str = "") -> Response:
    base = _base(request)
    return render(request, "partner/guests.html", base_name=base.base_name(), guests=base.guests(),
                  checked_out=out if out in ("1", "again") else "")


# --- offline material ------------------------------------------------------------------------------


@router.get("/sw.js", name="partner_sw")
def service_worker() -> Response:
    """The page's service worker (served here so that its scope can be ``/partner``; no secrets)."""
    return secured(FileResponse(STATIC_DIR / "js" / "partner_sw.js", media_type="text/javascript",
                                headers={"Service-Worker-Allowed": "/partner", "Cache-Control": "no-cache"}))


@router.get("/offline/bundle", name="partner_bundle")
def bundle(request: Request) -> Response:
    raw, etag = _base(request).bundle()
    return secured(Response(raw, media_type=BUNDLE_MEDIA_TYPE, headers={"ETag": etag}))


@router.get("/offline/eligibility/{programme}", name="partner_eligibility")
def eligibility(request: Request, programme: Annotated[str, Path(pattern=CODE)]) -> Response:
    try:
        return json_answer(_base(request).eligibility(programme))
    except (PermissionDenied, NotFound, NotConfigured) as exc:
        return _refused(request, exc)


@router.post("/sync", name="partner_sync")
def sync(request: Request, body: SyncRequest) -> Response:
    """Check-ins queued offline (the offline store's sync endpoint): one answer per item."""
    items = [(i.idempotency_key, i.qr, i.checked_in_at) for i in body.items]
    try:
        answers = _base(request).sync(body.programme, items)
    except PermissionDenied as exc:
        return _refused(request, exc)
    return json_answer([{"idempotency_key": a.idempotency_key, "status": a.status, "reason": a.reason,
                         "checkin_id": a.checkin_id} for a in answers])
