"""Organisation list import (``cardsvc orgs import``): the union hierarchy, upserted on the code.

Organisations are few and form a tree, so the file is all-or-nothing: every row is checked (kind,
parent exists and is a federation, USCC check character per GB 32100-2015) and nothing is written
if any row has a problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from cardsvc.errors import InvalidRecord
from cardsvc.registry import repo
from cardsvc.registry.columns import ORG_ALIASES, ORG_REQUIRED, ColumnMap
from cardsvc.registry.identity import normalise_text
from cardsvc.registry.models import FEDERATION_KINDS, Organisation, OrgKind
from cardsvc.registry.rows import RowProblem
from cardsvc.registry.sources import SheetRow, open_table

KIND_LABELS: Mapping[str, OrgKind] = {
    "区总工会": OrgKind.district_federation, "区级总工会": OrgKind.district_federation,
    "镇总工会": OrgKind.town_federation, "街道总工会": OrgKind.town_federation,
    "镇(街道)总工会": OrgKind.town_federation, "园区工会": OrgKind.park_federation,
    "园区总工会": OrgKind.park_federation, "产业工会": OrgKind.industry_federation,
    "行业总工会": OrgKind.industry_federation, "企业工会": OrgKind.enterprise_union,
    "村级工会联合会": OrgKind.village_joint_union, "村联合工会": OrgKind.village_joint_union,
    "市场工会联合会": OrgKind.market_joint_union, "行业工会联合会": OrgKind.industry_joint_union,
    "项目工会": OrgKind.project_union,
}
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@dataclass(frozen=True)
class OrgImportReport:
    source: str
    rows_read: int
    created: int
    updated: int
    problems: tuple[RowProblem, ...]


@dataclass(frozen=True, slots=True)
class _OrgRow:
    row: int
    code: str
    name: str
    kind: OrgKind
    parent_code: str | None
    uscc: str | None
    contact: str | None


def parse_uscc(raw: str) -> str:
    """Unified social credit code (GB 32100-2015): 18 characters with a MOD 31 check character."""
    text = normalise_text(raw).upper()
    if len(text) != 18 or any(c not in _USCC_CHARS for c in text):
        raise InvalidRecord("must be 18 characters of 0-9 and A-Y (no I, O, S, V, Z)", field="uscc",
                            reason="uscc_shape")
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(text[:17], _USCC_WEIGHTS, strict=True))
    if _USCC_CHARS[(31 - total % 31) % 31] != text[17]:
        raise InvalidRecord("check character does not match", field="uscc", reason="uscc_check")
    return text


def parse_kind(raw: str) -> OrgKind:
    text = normalise_text(raw)
    kind = KIND_LABELS.get(text) or next((k for k in OrgKind if k.value == text.lower()), None)
    if kind is None:
        raise InvalidRecord("unknown organisation type", field="kind", reason="unknown_kind")
    return kind


def import_orgs(session: Session, path: Path) -> OrgImportReport:
    """Check every row, then upsert all of them on ``code`` (or none, if any row has a problem)."""
    with open_table(path, ORG_ALIASES, ORG_REQUIRED) as table:
        parsed, problems = _parse_all(table.rows, table.columns)
    existing = {o.code: o for o in repo.list_orgs(session)}
    problems += _check_tree(parsed, existing, table.columns)
    rows_read = len({r.row for r in parsed} | {p.row for p in problems})
    if problems:
        return OrgImportReport(path.name, rows_read, 0, 0, tuple(sorted(problems, key=lambda p: p.row)))
    created = sum(1 for row in parsed if row.code not in existing)
    for row in parsed:
        _upsert(session, row, existing)
    for row in parsed:  # second pass: every parent has an id now, whatever the row order
        org = existing[row.code]
        org.parent_id = existing[row.parent_code].id if row.parent_code else None
        repo.save(session, obj=org)
    return OrgImportReport(path.name, rows_read, created, len(parsed) - created, ())


def _parse_all(rows: Iterator[SheetRow], columns: ColumnMap) -> tuple[list[_OrgRow], list[RowProblem]]:
    parsed: list[_OrgRow] = []
    problems: list[RowProblem] = []
    for row in rows:
        try:
            parsed.append(_parse_row(row, columns))
        except InvalidRecord as exc:
            problems.append(RowProblem(row.number, columns.label(exc.field), exc.reason,
                                       exc.message.split(": ", 1)[-1]))
    return parsed, problems


def _parse_row(row: SheetRow, columns: ColumnMap) -> _OrgRow:
    def text(name: str) -> str | None:
        position = columns.index.get(name)
        value = None if position is None else row.cells[position]
        cleaned = normalise_text("" if value is None else str(value))
        return cleaned or None

    code, name, kind = text("code"), text("name"), text("kind")
    if code is None or name is None or kind is None:
        missing = "code" if code is None else "name" if name is None else "kind"
        raise InvalidRecord("missing", field=missing, reason="missing")
    uscc = text("uscc")
    return _OrgRow(row.number, code[:32], name[:100], parse_kind(kind), text("parent_code"),
                   parse_uscc(uscc) if uscc else None, (text("contact") or "")[:100] or None)


def _check_tree(parsed: list[_OrgRow], existing: Mapping[str, Organisation],
                columns: ColumnMap) -> list[RowProblem]:
    kinds = {code: org.kind for code, org in existing.items()} | {r.code: r.kind for r in parsed}
    problems: list[RowProblem] = []
    for row in parsed:
        reason = _tree_problem(row, kinds)
        if reason:
            problems.append(RowProblem(row.row, columns.label("parent_code"), reason[0], reason[1]))
    seen: dict[str, int] = {}
    for row in parsed:
        if seen.setdefault(row.code, row.row) != row.row:
            problems.append(RowProblem(row.row, columns.label("code"), "duplicate_in_file",
                                       f"same code as row {seen[row.code]}"))
    return problems


def _tree_problem(row: _OrgRow, kinds: Mapping[str, OrgKind]) -> tuple[str, str] | None:
    if row.kind is OrgKind.district_federation:
        return ("parent_not_allowed", "the district federation has no parent") if row.parent_code else None
    if row.parent_code is None:
        return "missing", "every organisation but the district federation needs a parent"
    parent_kind = kinds.get(row.parent_code)
    if parent_kind is None:
        return "unknown_parent", "no organisation with this code in the file or the database"
    if parent_kind not in FEDERATION_KINDS or row.parent_code == row.code:
        return "parent_not_federation", "the parent must be a federation"
    return None


def _upsert(session: Session, row: _OrgRow, existing: dict[str, Organisation]) -> None:
    org = existing.get(row.code) or Organisation(code=row.code, name=row.name, kind=row.kind)
    org.name, org.kind, org.uscc, org.contact = row.name, row.kind, row.uscc, row.contact
    repo.save(session, obj=org)
    existing[row.code] = org
