"""Client roles, the route-permission table, and per-role allow-lists for member views.

The API asks :func:`check_permission` with the route's *name*; a route missing from
:data:`ROUTE_POLICIES` is refused (fail closed), and the app factory refuses to start with one.
The access-matrix test is generated from this table and the app's routes.

What a role may see of a member is an allow-list (:data:`MEMBER_FIELDS`), applied by
:func:`present_member`. Only ``admin`` ever sees a full ID number; for every other role the
presenter also masks anything shaped like an ID number or phone in the values it lets through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from cardsvc.errors import PermissionDenied
from cardsvc.logging import redact
from cardsvc.registry.masking import Audience, PiiKind, mask


class Role(StrEnum):
    """What a client is. ``service_point`` and ``partner`` clients are bound to one place."""

    admin = "admin"
    clerk = "clerk"
    service_point = "service_point"
    partner = "partner"


ALL_ROLES = frozenset(Role)


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """Who may call a route: nobody needs a token for a public route."""

    roles: frozenset[Role]
    public: bool = False


PUBLIC = RoutePolicy(roles=frozenset(), public=True)


def _only(*roles: Role) -> RoutePolicy:
    return RoutePolicy(roles=frozenset(roles))


# Route name (FastAPI ``name=``) -> policy.
ROUTE_POLICIES: Mapping[str, RoutePolicy] = MappingProxyType(
    {
        "healthz": PUBLIC,
        "readyz": PUBLIC,
        "metrics": PUBLIC,  # route templates and counts only; restrict at the proxy if wanted
        "whoami": RoutePolicy(roles=ALL_ROLES),
        "clients_list": _only(Role.admin),
        "clients_create": _only(Role.admin),
        "clients_revoke": _only(Role.admin),
        "audit_checkpoint": _only(Role.admin),
        # verification workflows
        "tap_page": PUBLIC,  # the phone-tap page: anonymous view unless a staff token is sent
        "verify_qr": RoutePolicy(roles=ALL_ROLES),
        "verify_sun_json": _only(Role.admin, Role.service_point, Role.partner),
        "challenges_create": _only(Role.admin, Role.service_point, Role.partner),
        "verify_card": _only(Role.admin, Role.service_point, Role.partner),
        "service_records_create": _only(Role.admin, Role.service_point),
        "service_records_stats": _only(Role.admin, Role.service_point),
        "checkins_create": _only(Role.admin, Role.partner),
        "checkins_sync": _only(Role.admin, Role.partner),
        "checkouts_create": _only(Role.admin, Role.partner),
        "eligibility_list": _only(Role.admin, Role.partner),
        "trust_bundle": RoutePolicy(roles=ALL_ROLES),
    }
)


def policy_for(route_name: str) -> RoutePolicy:
    """The route's policy; an unknown route is refused, never allowed by default."""
    policy = ROUTE_POLICIES.get(route_name)
    if policy is None:
        raise PermissionDenied(f"route {route_name!r} has no access policy")
    return policy


def check_permission(route_name: str, role: Role) -> None:
    """Raise :class:`PermissionDenied` unless ``role`` may call ``route_name``."""
    policy = policy_for(route_name)
    if not policy.public and role not in policy.roles:
        raise PermissionDenied(f"role {role.value} may not call {route_name}")


# --- member views ------------------------------------------------------------------------------

# Keys a presenter may emit per role. ``masked_name`` and ``id_last4`` are derived from ``name`` and
# ``id_number`` (through :func:`cardsvc.registry.masking.mask`) when the view does not carry them.
# ``None`` means "everything" (admin only).
# Any run of 15+ digits (old 15-digit and 18-digit ID numbers, even inside longer runs) is masked.
_LONG_DIGITS = re.compile(r"\d{14,}[\dXx]")

MEMBER_FIELDS: Mapping[Role, frozenset[str] | None] = MappingProxyType(
    {
        Role.admin: None,
        Role.clerk: frozenset(
            {"member_id", "name", "organisation", "id_last4", "membership_status", "card_status"}
        ),
        Role.service_point: frozenset(
            {"member_id", "name", "organisation", "membership_status", "recent_services"}
        ),
        Role.partner: frozenset({"member_id", "masked_name", "id_last4", "eligibility", "quota"}),
    }
)


def _derived(view: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(view)
    name = view.get("name")
    if "masked_name" not in out and isinstance(name, str):
        out["masked_name"] = mask(PiiKind.name, name)
    id_number = view.get("id_number")
    if "id_last4" not in out and isinstance(id_number, str):
        out["id_last4"] = mask(PiiKind.id_number, id_number, audience=Audience.partner)
    return out


def _mask_text(text: str) -> str:
    return _LONG_DIGITS.sub("[REDACTED]", redact(text))


# Every masked shape (ID number, mobile number, 15+ digit run) has at least this many digits.
_FEWEST_MASKED_DIGITS = 11


def _scrub(value: Any) -> Any:
    """Mask ID-number- and phone-shaped text anywhere inside a value (defence in depth)."""
    if isinstance(value, str):
        return value if len(value) < _FEWEST_MASKED_DIGITS else _mask_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if -10 ** (_FEWEST_MASKED_DIGITS - 1) < value < 10 ** (_FEWEST_MASKED_DIGITS - 1):
            return value  # too few digits to be anything masked
        text = str(value)  # an ID number may have become a number somewhere upstream
        return value if _mask_text(text) == text else _mask_text(text)
    if isinstance(value, Mapping):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def present_member(view: Mapping[str, Any], role: Role) -> dict[str, Any]:
    """Return only what ``role`` may see of a member view."""
    full = _derived(view)
    allowed = MEMBER_FIELDS[role]
    if allowed is None:
        return full
    return {key: _scrub(value) for key, value in full.items() if key in allowed}
