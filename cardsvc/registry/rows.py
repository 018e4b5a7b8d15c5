"""One member row of an import file → a parsed :class:`MemberRow` or the row's problems."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from cardsvc.errors import InvalidRecord
from cardsvc.registry.columns import ColumnMap
from cardsvc.registry.identity import (
    Gender,
    IdNumber,
    normalise_text,
    parse_id_number,
    parse_name,
    parse_phone,
)
from cardsvc.registry.models import FEDERATION_KINDS, OrgKind
from cardsvc.registry.sources import SheetRow

_CATEGORY_SPLIT = re.compile(r"[、,;/|\s]+")
_DATE_PATTERNS = (
    re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
_GENDERS = {"男": Gender.male, "女": Gender.female, "male": Gender.male, "female": Gender.female,
            "m": Gender.male, "f": Gender.female}


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One reason a row was not imported. ``field`` is the column header as written in the file."""

    row: int
    field: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class OrgRef:
    id: int
    kind: OrgKind


@dataclass(frozen=True)
class RowContext:
    """Lookups the row parser needs, loaded once per import."""

    orgs: Mapping[str, OrgRef]  # by code and by name
    categories: Mapping[str, int]  # by code and by label
    default_org: OrgRef | None
    today: dt.date


@dataclass(frozen=True, slots=True)
class MemberRow:
    row: int
    name: str
    id_number: IdNumber
    phone: str | None
    org_id: int
    categories: frozenset[int]
    joined_on: dt.date | None

    def __repr__(self) -> str:
        return f"MemberRow(row={self.row}, <personal fields redacted>)"


def parse_member_row(row: SheetRow, columns: ColumnMap, context: RowContext) -> MemberRow | list[RowProblem]:
    """Parse every field; collect all problems of the row rather than stopping at the first."""
    problems: list[RowProblem] = []

    def field(name: str, parse: Callable[[object], object]) -> object:
        try:
            return parse(_cell(row, columns, name))
        except InvalidRecord as exc:
            problems.append(RowProblem(row.number, columns.label(name), exc.reason, _message(exc)))
            return None

    name = field("name", parse_name)
    id_number = field("id_number", lambda v: parse_id_number(v, today=context.today))
    phone = field("phone", parse_phone)
    org = field("org", lambda v: _org(v, context))
    categories = field("categories", lambda v: _categories(v, context))
    joined_on = field("joined_on", lambda v: _date(v, today=context.today))
    gender = field("gender", _gender)
    if isinstance(id_number, IdNumber) and isinstance(gender, Gender) and gender is not id_number.gender:
        problems.append(RowProblem(row.number, columns.label("gender"), "gender_mismatch",
                                   "does not match the ID number"))
    if problems:
        return problems
    return MemberRow(row.number, cast(str, name), cast(IdNumber, id_number), cast("str | None", phone),
                     cast(OrgRef, org).id, cast("frozenset[int]", categories),
                     cast("dt.date | None", joined_on))


def _cell(row: SheetRow, columns: ColumnMap, name: str) -> object:
    position = columns.index.get(name)
    return None if position is None else row.cells[position]


def _message(exc: InvalidRecord) -> str:
    return exc.message.split(": ", 1)[-1]


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _org(value: object, context: RowContext) -> OrgRef:
    if _blank(value):
        if context.default_org is None:
            raise InvalidRecord("missing (or pass --org CODE)", field="org", reason="missing")
        return context.default_org
    org = context.orgs.get(normalise_text(str(value)))
    if org is None:
        raise InvalidRecord("no organisation with this code or name", field="org", reason="unknown_org")
    if org.kind in FEDERATION_KINDS:
        raise InvalidRecord("is a federation; members belong to grassroots unions", field="org",
                            reason="org_is_federation")
    return org


def _categories(value: object, context: RowContext) -> frozenset[int]:
    if _blank(value):
        return frozenset()
    ids: set[int] = set()
    for token in _CATEGORY_SPLIT.split(normalise_text(str(value))):
        if not token:
            continue
        category = context.categories.get(token) or context.categories.get(token.lower())
        if category is None:
            raise InvalidRecord("unknown category", field="categories", reason="unknown_category")
        ids.add(category)
    return frozenset(ids)


def _date(value: object, *, today: dt.date) -> dt.date | None:
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        day = _parse_date_text(normalise_text(str(value)))
    if day > today:
        raise InvalidRecord("is in the future", field="joined_on", reason="date_in_future")
    return day


def _parse_date_text(text: str) -> dt.date:
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            try:
                return dt.date(*(int(g) for g in match.groups()))
            except ValueError:
                break
    raise InvalidRecord("not a date (use 2024-03-01)", field="joined_on", reason="date_format")


def _gender(value: object) -> Gender | None:
    if _blank(value):
        return None
    gender = _GENDERS.get(normalise_text(str(value)).lower())
    if gender is None:
        raise InvalidRecord("not 男 or 女", field="gender", reason="gender_value")
    return gender
