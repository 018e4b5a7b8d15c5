"""Who may open which page: ONE table, route name → roles (fail closed, like ``ROUTE_POLICIES``).

Every page route has a ``name=``; :func:`policy_for` refuses a name missing here, and
:func:`cardsvc.web.app.create_web_app` refuses to build an app with a page route not in the table.
The access test (tests/web/test_access.py) is generated from this table: every role and no
session against every page. ``nav`` is the catalog key of the page's link in the header (None: not
in the navigation), in table order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cardsvc.errors import PermissionDenied
from cardsvc.verification.roles import ALL_ROLES, Role


@dataclass(frozen=True, slots=True)
class PagePolicy:
    roles: frozenset[Role]
    public: bool = False
    nav: str | None = None


PUBLIC = PagePolicy(roles=frozenset(), public=True)
SIGNED_IN = PagePolicy(roles=ALL_ROLES)
DESK = frozenset({Role.admin, Role.clerk})
ADMIN = frozenset({Role.admin})
POINT = frozenset({Role.service_point})
PARTNER = frozenset({Role.partner})


def _only(roles: frozenset[Role], nav: str | None = None) -> PagePolicy:
    return PagePolicy(roles=roles, nav=nav)


# Page route name -> policy. Add a row with every new page (docs/web.md).
PAGES: Mapping[str, PagePolicy] = MappingProxyType(
    {
        # sign-in and the frame
        "login_form": PUBLIC,
        "login_submit": PUBLIC,
        "language": PUBLIC,
        "logout": SIGNED_IN,
        "home": SIGNED_IN,
        # issuance desk (issue #6 item 3)
        "desk_import_form": _only(DESK, nav="nav.desk_import"),
        "desk_import_submit": _only(DESK),
        "desk_import_report": _only(DESK),
        "desk_batches": _only(DESK, nav="nav.desk_batches"),
        "desk_batch_create": _only(DESK),
        "desk_progress": _only(DESK),
        "desk_print": _only(DESK),
        "desk_cards": _only(DESK, nav="nav.desk_cards"),
        "desk_card": _only(DESK),
        "desk_card_confirm": _only(DESK),
        "desk_card_action": _only(DESK),
        # service point (issue #6 item 4): service-point users, bound to their point
        "sp_tap": _only(POINT, nav="nav.sp_tap"),
        "sp_verify": _only(POINT),
        "sp_sun": _only(POINT),
        "sp_latest": _only(POINT),
        "sp_record": _only(POINT),
        "sp_records": _only(POINT, nav="nav.sp_records"),
        # partner base (issue #6 item 5): partner users, bound to their base
        "partner_desk": _only(PARTNER, nav="nav.partner_desk"),
        "partner_sun": _only(PARTNER),
        "partner_verify": _only(PARTNER),
        "partner_checkin": _only(PARTNER),
        "partner_checkout": _only(PARTNER),
        "partner_guests": _only(PARTNER, nav="nav.partner_guests"),
        "partner_bundle": _only(PARTNER),
        "partner_eligibility": _only(PARTNER),
        "partner_sync": _only(PARTNER),
        "partner_sw": PUBLIC,  # the page's service worker script: no data, scope /partner
        # admin (issue #6 item 6): admins only
        "admin_dashboard": _only(ADMIN, nav="nav.admin_dashboard"),
        "admin_clients": _only(ADMIN, nav="nav.admin_clients"),
        "admin_client_create": _only(ADMIN),
        "admin_client_confirm": _only(ADMIN),
        "admin_client_revoke": _only(ADMIN),
        "admin_staff": _only(ADMIN, nav="nav.admin_staff"),
        "admin_staff_create": _only(ADMIN),
        "admin_staff_confirm": _only(ADMIN),
        "admin_staff_action": _only(ADMIN),
        "admin_places": _only(ADMIN, nav="nav.admin_places"),
        "admin_point_save": _only(ADMIN),
        "admin_item_save": _only(ADMIN),
        "admin_base_save": _only(ADMIN),
        "admin_programme_save": _only(ADMIN),
        "admin_privacy": _only(ADMIN, nav="nav.admin_privacy"),
        "admin_consent_confirm": _only(ADMIN),
        "admin_consent_withdraw": _only(ADMIN),
        "admin_erase_confirm": _only(ADMIN),
        "admin_erase": _only(ADMIN),
        "admin_request_file": _only(ADMIN),
        "admin_request_confirm": _only(ADMIN),
        "admin_request_answer": _only(ADMIN),
    }
)


def policy_for(page: str) -> PagePolicy:
    """The page's policy; a page missing from the table is refused, never allowed by default."""
    policy = PAGES.get(page)
    if policy is None:
        raise PermissionDenied(f"page {page!r} has no access policy")
    return policy


def check_page(page: str, role: Role) -> None:
    policy = policy_for(page)
    if not policy.public and role not in policy.roles:
        raise PermissionDenied(f"role {role.value} may not open {page}")


def nav_for(role: Role) -> list[tuple[str, str]]:
    """``(route name, catalog key)`` of the pages ``role`` sees in the header, in table order."""
    return [(name, p.nav) for name, p in PAGES.items() if p.nav and role in p.roles]
