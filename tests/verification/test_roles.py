"""Roles, the route-permission table, and the per-role member-view allow-lists."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.errors import PermissionDenied
from cardsvc.verification.roles import (
    MEMBER_FIELDS,
    ROUTE_POLICIES,
    Role,
    _mask_text,
    _scrub,
    check_permission,
    policy_for,
    present_member,
)

ID_SHAPE = re.compile(r"\d{17}[\dXx]")
SAMPLE_ID = "11010519491231002X"  # GB 11643-1999 example number (check digit X)

MEMBER = {
    "member_id": "m:7f3a",
    "name": "欧阳娜娜",
    "id_number": SAMPLE_ID,
    "phone": "13800138000",
    "organisation": "区总工会机关工会",
    "membership_status": "active",
    "card_status": "issued",
    "eligibility": "eligible",
    "quota": 2,
    "recent_services": [{"item": "legal_consultation", "at": "2026-11-01"}],
}


def test_unknown_route_is_refused_for_every_role() -> None:
    for role in Role:
        with pytest.raises(PermissionDenied):
            check_permission("no_such_route", role)
    with pytest.raises(PermissionDenied):
        policy_for("no_such_route")


def test_public_routes_need_no_role_and_others_name_roles() -> None:
    for name, policy in ROUTE_POLICIES.items():
        assert policy.public != bool(policy.roles), name


def test_admin_only_routes() -> None:
    check_permission("clients_create", Role.admin)
    for role in (Role.clerk, Role.service_point, Role.partner):
        with pytest.raises(PermissionDenied, match=role.value):
            check_permission("clients_create", role)


def test_partner_sees_masked_name_last4_eligibility_quota() -> None:
    out = present_member(MEMBER, Role.partner)
    assert out == {"member_id": "m:7f3a", "masked_name": "欧阳*娜", "id_last4": "002X",
                   "eligibility": "eligible", "quota": 2}


def test_service_point_sees_name_organisation_services() -> None:
    out = present_member(MEMBER, Role.service_point)
    assert set(out) == {"member_id", "name", "organisation", "membership_status", "recent_services"}
    assert out["name"] == "欧阳娜娜"
    assert "id_number" not in out and "phone" not in out


def test_clerk_never_sees_full_id_or_phone() -> None:
    out = present_member(MEMBER, Role.clerk)
    assert out["id_last4"] == "002X"
    assert "id_number" not in out and "phone" not in out


def test_admin_sees_everything() -> None:
    out = present_member(MEMBER, Role.admin)
    assert out["id_number"] == SAMPLE_ID and out["phone"] == "13800138000"
    assert out["masked_name"] == "欧阳*娜"


def test_allowed_values_are_scrubbed_of_id_shapes() -> None:
    leaky = dict(MEMBER, organisation=f"note {SAMPLE_ID}", recent_services=[{"note": SAMPLE_ID}])
    out = present_member(leaky, Role.service_point)
    assert SAMPLE_ID not in repr(out)


_text = st.text(alphabet="0123456789Xx张三李 -:", max_size=40)
_ids = st.from_regex(r"\A[1-9]\d{16}[\dX]\Z")
_values = st.recursive(
    st.one_of(_text, _ids, st.integers(), st.none()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
_keys = st.sampled_from(sorted({k for v in MEMBER_FIELDS.values() if v for k in v} | {"id_number", "phone"}))


@given(view=st.dictionaries(_keys, _values, max_size=8), id_number=_ids)
def test_non_admin_output_never_contains_an_id_number(view: dict[str, object], id_number: str) -> None:
    view = dict(view, id_number=id_number)
    for role in (Role.clerk, Role.service_point, Role.partner):
        assert not ID_SHAPE.search(repr(present_member(view, role))), role


def test_scrub_skips_only_values_too_short_to_hold_a_masked_shape() -> None:
    """The short cut (fewer than 11 characters or digits) never lets a masked shape through."""
    rng = random.Random(11)
    alphabet = "0123456789１３８Xx-张 "
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert _scrub(text) == _mask_text(text)
    for number in (9_999_999_999, -9_999_999_999, 13_812_345_678, 110_105_194_912_310_021):
        text = str(number)
        assert _scrub(number) == (number if _mask_text(text) == text else _mask_text(text))
    assert _scrub("13812345678") != "13812345678"
    assert _scrub(13_812_345_678) != 13_812_345_678
