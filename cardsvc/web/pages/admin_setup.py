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
from cardsvc.registry.verification_models import PartnerBase, ServiceItem, ServicePoint
from cardsvc.web.admin import ProgrammeSpec
from cardsvc.web.pages.admin import NonceField, admin_desk, once, optional, path_of
from cardsvc.web.render import render

router = APIRouter(prefix="/admin")
CODE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Code = Annotated[str, Form(pattern=CODE)]
Name = Annotated[str, Form(min_length=1, max_length=100)]
PublicId = Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{4,40}$")]
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
        raise InvalidRecord("choose eligible categories or a named list, not both", field="named")
    spec = ProgrammeSpec(code=code, base_code=base_code, name=name.strip(), starts_on=starts_on,
                         ends_on=ends_on, quota=quota, categories=groups, named=members)
    return _saved(request, nonce, lambda: admin_desk(request).save_programme(spec), "programmes")


# --- consents and erasure ----------------------------------------------------------------------


@router.get("/privacy", name="admin_privacy")
def privacy_page(request: Request) -> Response:
    desk = admin_desk(request)
    return render(request, "admin/privacy.html", consents=desk.consents(), erasures=desk.erasures())


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
