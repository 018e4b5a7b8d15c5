"""Reprs and str() of registry objects never carry personal data (they end up in logs and tracebacks)."""

from __future__ import annotations

import datetime as dt

from cardsvc.registry.models import Member, MemberPublic
from cardsvc.registry.sources import SheetRow

NAME, ID, PHONE = "欧阳娜娜", "11010519491231002X", "13800138000"


def _shown(value: object) -> str:
    return repr(value) + str(value)


def test_member_models_leave_personal_fields_out() -> None:
    """Regression: pydantic's repr/str printed ``name='欧阳娜娜'``, the birth date and gender."""
    member = Member(name=NAME, org_id=1, gender="female", birth_date=dt.date(1949, 12, 31))
    public = MemberPublic(name="欧阳*娜", public_id="p1", id_number="110105********002X",
                          phone="138****8000", gender="female", birth_date=dt.date(1949, 12, 31),
                          org_code="G1", categories=())
    for shown in (_shown(member), _shown(public)):
        assert not any(text in shown for text in (NAME, "欧阳*娜", "1949", "female", "002X", "8000"))
    assert member.public_id in _shown(member) and "org_code='G1'" in _shown(public)


def test_sheet_rows_leave_cells_out() -> None:
    """Regression: a raw spreadsheet row's repr held the name, ID number and phone as read."""
    row = SheetRow(7, (NAME, ID, PHONE))
    assert not any(text in _shown(row) for text in (NAME, ID, PHONE))
    assert "number=7" in repr(row) and row.cells == (NAME, ID, PHONE)
