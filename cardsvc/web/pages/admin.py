"""Admin pages (issue #6 item 6), part one: the dashboard, API clients and tokens, staff users.

* ``/admin``: charts (cards issued per batch and month, services per point and item, check-ins per
  base) and the audit chain's status (verified up to row N, or broken at row N).
* ``/admin/clients``: create (the token is shown once, on the answer page only), list, revoke.
* ``/admin/staff``: create, disable, unlock.

Every change is a POST with the CSRF token and a one-time nonce (``StaffAccounts.once``: a second
submission shows the first result and changes nothing); destructive ones go through a confirmation
page first; each is audit-logged with the page user as actor (:mod:`cardsvc.web.admin`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response

from cardsvc.api.schemas import CLIENT_ID
from cardsvc.registry.staff import NewStaff
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import IssuedToken
from cardsvc.web.acting import web_actor
from cardsvc.web.admin import AdminDesk
from cardsvc.web.admin_stats import Bar, dashboard
from cardsvc.web.context import web_of
from cardsvc.web.forms import submit_once
from cardsvc.web.render import render
from cardsvc.web.session import user_of

router = APIRouter(prefix="/admin")
NonceField = Annotated[str, Form(max_length=64)]
OptionalCode = Annotated[str, Form(max_length=64)]
ClientId = Annotated[str, Path(pattern=CLIENT_ID)]
Username = Annotated[str, Path(pattern=r"^[a-z0-9_.-]{2,64}$")]
STAFF_ACTIONS = ("disable", "unlock")
CHART_SETS = ("cards_per_batch", "cards_per_month", "services_per_point", "services_per_item",
              "checkins_per_base")


def admin_desk(request: Request) -> AdminDesk:
    return AdminDesk(web_of(request), request.app.state.services, web_actor(user_of(request)))


def once(request: Request, nonce: str, work: Callable[[], str], done_key: str) -> Response:
    """Run ``work`` once for this form (it returns the page to go to) and redirect there."""
    return submit_once(request, nonce, work, done_key=done_key, duplicate_key="admin.duplicate")


def path_of(request: Request, name: str, **params: str) -> str:
    return str(request.url_for(name, **params).path)


def optional(value: str) -> str | None:
    return value.strip() or None


# --- dashboard -------------------------------------------------------------------------------


@router.get("", name="admin_dashboard")
def admin_dashboard_page(request: Request) -> Response:
    desk = admin_desk(request)
    board = dashboard(desk.db, web_of(request).settings.zone)
    charts: dict[str, list[Bar]] = {name: getattr(board, name) for name in CHART_SETS}
    return render(request, "admin/dashboard.html", charts=charts, audit=desk.audit_status())


# --- API clients -----------------------------------------------------------------------------


@router.get("/clients", name="admin_clients")
async def clients_page(request: Request) -> Response:
    desk = admin_desk(request)
    return render(request, "admin/clients.html", clients=await desk.clients(), roles=list(Role),
                  points=await anyio.to_thread.run_sync(desk.points),
                  bases=await anyio.to_thread.run_sync(desk.bases))


@router.post("/clients", name="admin_client_create")
def client_create(request: Request, nonce: NonceField, label: Annotated[str, Form(max_length=80)],
                  role: Annotated[Role, Form()], service_point: OptionalCode = "",
                  partner_base: OptionalCode = "") -> Response:
    desk = admin_desk(request)
    made: list[IssuedToken] = []

    def work() -> str:
        issued = anyio.from_thread.run(lambda: desk.create_client(
            label=label.strip(), role=role, point=optional(service_point), base=optional(partner_base)))
        made.append(issued)
        return issued.client.client_id

    client_id, first = web_of(request).accounts.once(user_of(request).staff, nonce, work)
    token = made[0].token if first and made else None
    return render(request, "admin/token.html", client_id=client_id, token=token)


@router.get("/clients/{client_id}/revoke", name="admin_client_confirm")
async def client_confirm(request: Request, client_id: ClientId) -> Response:
    return render(request, "admin/confirm.html", question_key="admin.clients.revoke_question",
                  subject=client_id, effect_key="admin.clients.revoke_effect",
                  action=path_of(request, "admin_client_revoke", client_id=client_id),
                  back=path_of(request, "admin_clients"), button_key="admin.clients.revoke", fields={})


@router.post("/clients/{client_id}/revoke", name="admin_client_revoke")
def client_revoke(request: Request, client_id: ClientId, nonce: NonceField) -> Response:
    desk = admin_desk(request)

    def work() -> str:
        anyio.from_thread.run(desk.revoke_client, client_id)
        return path_of(request, "admin_clients")

    return once(request, nonce, work, "admin.clients.revoke_done")


# --- staff users -----------------------------------------------------------------------------


@router.get("/staff", name="admin_staff")
def staff_page(request: Request) -> Response:
    desk = admin_desk(request)
    return render(request, "admin/staff.html", users=desk.staff(), roles=list(Role), points=desk.points(),
                  bases=desk.bases(), me=user_of(request).staff.username)


@router.post("/staff", name="admin_staff_create")
def staff_create(request: Request, nonce: NonceField, username: Annotated[str, Form(max_length=64)],
                 display_name: Annotated[str, Form(max_length=80)], role: Annotated[Role, Form()],
                 password: Annotated[str, Form(max_length=256)], service_point: OptionalCode = "",
                 partner_base: OptionalCode = "") -> Response:
    desk = admin_desk(request)
    new = NewStaff(username=username.strip().lower(), display_name=display_name, role=role.value,
                   password=password, service_point_id=optional(service_point),
                   partner_base_id=optional(partner_base))

    def work() -> str:
        desk.create_staff(new)
        return path_of(request, "admin_staff")

    return once(request, nonce, work, "admin.staff.create_done")


@router.get("/staff/{username}/{action}", name="admin_staff_confirm")
def staff_confirm(request: Request, username: Username,
                  action: Annotated[str, Path(pattern="^(disable|unlock)$")]) -> Response:
    return render(request, "admin/confirm.html", question_key=f"admin.staff.{action}_question",
                  subject=username, effect_key=f"admin.staff.{action}_effect",
                  action=path_of(request, "admin_staff_action", username=username, action=action),
                  back=path_of(request, "admin_staff"), button_key=f"admin.staff.{action}", fields={})


@router.post("/staff/{username}/{action}", name="admin_staff_action")
def staff_action(request: Request, username: Username, nonce: NonceField,
                 action: Annotated[str, Path(pattern="^(disable|unlock)$")]) -> Response:
    desk = admin_desk(request)

    def work() -> str:
        if action == "disable":
            desk.disable_staff(username, me=user_of(request).staff.username)
        else:
            desk.unlock_staff(username)
        return path_of(request, "admin_staff")

    return once(request, nonce, work, f"admin.staff.{action}_done")
