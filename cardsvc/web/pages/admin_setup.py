"""Admin pages (issue #6 item 6), part two: service points and items, partner bases and programmes,
consents and erasure. Same rules as :mod:`cardsvc.web.pages.admin`: POST + CSRF + one-time nonce,
a confirmation page before anything destructive, every change audit-logged.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from cardsvc.errors import InvalidRecord
from cardsvc.registry.privacy_models import NOTE_MAX, RequestKind, RequestStatus
from cardsvc.registry.privacy_requests import due_at
from cardsvc.registry.verification_models import PartnerBase, ServiceItem, ServicePoint
from cardsvc.web.admin import ProgrammeSpec
from cardsvc.web.pages.admin import NonceField, admin_desk, once, optional, path_of
from cardsvc.web.render import render

router = APIRouter(prefix="/admin")
CODE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Code = Annotated[str, Form(pattern=CODE)]
Name = Annotated[str, Form(min_length=1, max_length=100)]
PublicId = Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{4,40}$")]
RequestId = Annotated[int, Form(ge=1)]
Note = Annotated[str, Form(max_length=NOTE_MAX)]
Answer = Annotated[RequestStatus, Form()]
_SPLIT = re.compile(r"[\s,，;；]+")


def _codes(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part for part in _SPLIT.split(text.strip()) if part))


# --- service points, items, partner bases, programmes ------------------------------------------


@router.get("/places", name="admin_places")
def places_page(request: Request) -> Response:
    desk = admin_desk(request)
    categories = desk.categories()
    return render(request, "admin/places.html", points=desk.points(), items=desk.items(), bases=desk.bases(),
                  programmes=desk.programmes(), categories=categories, category_labels=dict(categories))


def _saved(request: Request, nonce: str, save: Callable[[], None], anchor: str) -> Response:
    def work() -> str:
        save()
        return path_of(request, "admin_places") + f"#{anchor}"

    return once(request, nonce, work, "admin.places.save_done")


@router.post("/points", name="admin_point_save")
def point_save(request: Request, nonce: NonceField, code: Code, name: Name,
               org_code: Annotated[str, Form(max_length=32)] = "") -> Response:
    point = ServicePoint(code=code, name=name.strip(), org_code=optional(org_code))
    return _saved(request, nonce, lambda: admin_desk(request).save_point(point), "points")


@router.post("/items", name="admin_item_save")
def item_save(request: Request, nonce: NonceField, code: Annotated[str, Form(pattern=r"^[a-z0-9_]{1,32}$")],
              name: Annotated[str, Form(min_length=1, max_length=50)],
              sort: Annotated[int, Form(ge=0, le=10_000)] = 100) -> Response:
    item = ServiceItem(code=code, name=name.strip(), sort=sort)
    return _saved(request, nonce, lambda: admin_desk(request).save_item(item), "items")


@router.post("/bases", name="admin_base_save")
def base_save(request: Request, nonce: NonceField, code: Code, name: Name,
              city: Annotated[str, Form(max_length=50)] = "") -> Response:
    base = PartnerBase(code=code, name=name.strip(), city=city.strip())
    return _saved(request, nonce, lambda: admin_desk(request).save_base(base), "bases")


@router.post("/programmes", name="admin_programme_save")
def programme_save(request: Request, nonce: NonceField, code: Code, base_code: Code, name: Name,
                   starts_on: Annotated[dt.date, Form()], ends_on: Annotated[dt.date, Form()],
                   quota: Annotated[int, Form(ge=0, le=1_000_000)],
                   categories: Annotated[list[str] | None, Form()] = None,
                   named: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    members, groups = _codes(named), tuple(categories or ())
    if members and groups:
        raise InvalidRecord("choose eligible categories or a named list, not both", field="named",
                            reason="both_lists")
    spec = ProgrammeSpec(code=code, base_code=base_code, name=name.strip(), starts_on=starts_on,
                         ends_on=ends_on, quota=quota, categories=groups, named=members)
    return _saved(request, nonce, lambda: admin_desk(request).save_programme(spec), "programmes")


# --- consents and erasure ----------------------------------------------------------------------


@router.get("/privacy", name="admin_privacy")
def privacy_page(request: Request) -> Response:
    desk = admin_desk(request)
    pending, answered = desk.privacy_requests()
    now = request.app.state.services.clock()
    return render(request, "admin/privacy.html", consents=desk.consents(), erasures=desk.erasures(),
                  pending=[(r, (now - r.received_at).days, due_at(r), now > due_at(r)) for r in pending],
                  answered=answered, kinds=list(RequestKind), note_max=NOTE_MAX)


@router.post("/consents/confirm", name="admin_consent_confirm")
def consent_confirm(request: Request, member: PublicId, partner: Code) -> Response:
    return render(request, "admin/confirm.html", question_key="admin.privacy.withdraw_question",
                  subject=f"{member} / {partner}", effect_key="admin.privacy.withdraw_effect",
                  action=path_of(request, "admin_consent_withdraw"), back=path_of(request, "admin_privacy"),
                  button_key="admin.privacy.withdraw", fields={"member": member, "partner": partner})


@router.post("/consents/withdraw", name="admin_consent_withdraw")
def consent_withdraw(request: Request, nonce: NonceField, member: PublicId, partner: Code) -> Response:
    def work() -> str:
        admin_desk(request).withdraw_consent(member, partner)
        return path_of(request, "admin_privacy")

    return once(request, nonce, work, "admin.privacy.withdraw_done")


@router.post("/erase/confirm", name="admin_erase_confirm")
def erase_confirm(request: Request, member: PublicId) -> Response:
    return render(request, "admin/confirm.html", question_key="admin.privacy.erase_question",
                  subject=member, effect_key="admin.privacy.erase_effect",
                  action=path_of(request, "admin_erase"), back=path_of(request, "admin_privacy"),
                  button_key="admin.privacy.erase", fields={"member": member})


@router.post("/erase", name="admin_erase")
def erase(request: Request, nonce: NonceField, member: PublicId) -> Response:
    def work() -> str:
        admin_desk(request).erase(member)
        return path_of(request, "admin_privacy")

    return once(request, nonce, work, "admin.privacy.erase_done")


# --- members' privacy requests (a queue answered within 15 days) -------------------------------


@router.post("/privacy/requests", name="admin_request_file")
def request_file(request: Request, nonce: NonceField, member: PublicId, kind: Annotated[RequestKind, Form()],
                 partner: Annotated[str, Form(max_length=64)] = "") -> Response:
    base = optional(partner) if kind is RequestKind.consent_withdrawal else None
    if base is not None and re.fullmatch(CODE, base) is None:
        raise InvalidRecord("the partner base code is not valid", field="partner", reason="place_code",
                            value=base)

    def work() -> str:
        admin_desk(request).file_request(kind, member, base)
        return path_of(request, "admin_privacy") + "#requests"

    return once(request, nonce, work, "admin.requests.file_done")


@router.post("/privacy/requests/confirm", name="admin_request_confirm")
def request_confirm(request: Request, request_id: RequestId, status: Answer, note: Note = "") -> Response:
    if status is RequestStatus.pending:
        raise InvalidRecord("an answer is done or refused", field="status", reason="not_an_answer")
    return render(request, "admin/confirm.html", question_key=f"admin.requests.{status.value}_question",
                  subject=f"#{request_id}", effect_key=f"admin.requests.{status.value}_effect",
                  action=path_of(request, "admin_request_answer"), back=path_of(request, "admin_privacy"),
                  button_key="admin.requests.do" if status is RequestStatus.done else "admin.requests.refuse",
                  fields={"request_id": request_id, "status": status.value, "note": note})


@router.post("/privacy/requests/answer", name="admin_request_answer")
def request_answer(request: Request, nonce: NonceField, request_id: RequestId, status: Answer,
                   note: Note = "") -> Response:
    def work() -> str:
        admin_desk(request).answer_request(request_id, status, note)
        return path_of(request, "admin_privacy") + "#requests"

    return once(request, nonce, work, f"admin.requests.{status.value}_done")
