"""Member list import: parse, de-duplicate, upsert on the ID blind index, in one transaction.

The whole file is one transaction: a bad file, a crash or a kill leaves the database as it was, and
running the same command again finishes the job. Re-importing an unchanged file changes nothing
(rows compare equal on name, phone index, organisation, categories and joined date). Rows move to
the database in chunks through SQLAlchemy Core (no ORM object per row).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from cardsvc.errors import ImportFileError
from cardsvc.logging import get_logger
from cardsvc.registry import repo
from cardsvc.registry.columns import MEMBER_ALIASES, MEMBER_REQUIRED, ColumnMap
from cardsvc.registry.identity import normalise_text
from cardsvc.registry.models import MemberStatus, new_public_id
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.rows import MemberRow, OrgRef, RowContext, RowProblem, parse_member_row
from cardsvc.registry.sources import SheetRow, open_table

log = get_logger(__name__)

CHUNK_ROWS = 2000
Progress = Callable[[int, int | None], None]  # rows done, rows expected (None if unknown)


@dataclass(frozen=True)
class ImportReport:
    """The outcome of one import: counts, every rejected row's reasons, and notices."""

    source: str
    dry_run: bool
    rows_read: int
    created: int
    updated: int
    unchanged: int
    problems: tuple[RowProblem, ...]
    notices: tuple[str, ...]

    @property
    def rejected_rows(self) -> int:
        return len({p.row for p in self.problems})


@dataclass
class _Tally:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Indexed:
    row: MemberRow
    id_index: bytes
    phone_index: bytes | None


class MemberImport:
    """One run of ``cardsvc members import`` against an open session (the caller commits)."""

    def __init__(self, session: Session, cipher: PiiCipher, context: RowContext, columns: ColumnMap,
                 *, now: dt.datetime) -> None:
        self._session = session
        self._cipher = cipher
        self._context = context
        self._columns = columns
        self._now = now
        self._seen: dict[bytes, int] = {}
        self.tally = _Tally()

    def run(self, rows: Iterator[SheetRow], progress: Progress | None, expected: int | None) -> None:
        chunk: list[_Indexed] = []
        for row in rows:
            self.tally.rows_read += 1
            indexed = self._accept(row)
            if indexed is not None:
                chunk.append(indexed)
            if len(chunk) >= CHUNK_ROWS:
                self._apply(chunk)
                chunk = []
                if progress:
                    progress(self.tally.rows_read, expected)
        self._apply(chunk)
        if progress:
            progress(self.tally.rows_read, expected)

    def _accept(self, row: SheetRow) -> _Indexed | None:
        parsed = parse_member_row(row, self._columns, self._context)
        if isinstance(parsed, list):
            self.tally.problems.extend(parsed)
            return None
        id_index = self._cipher.blind_index(parsed.id_number.value, field="id_number")
        first = self._seen.setdefault(id_index, parsed.row)
        if first != parsed.row:
            self._problem(parsed.row, "id_number", "duplicate_in_file", f"same person as row {first}")
            return None
        phone_index = self._cipher.blind_index(parsed.phone, field="phone") if parsed.phone else None
        return _Indexed(parsed, id_index, phone_index)

    def _problem(self, row: int, name: str, reason: str, message: str) -> None:
        self.tally.problems.append(RowProblem(row, self._columns.label(name), reason, message))

    def _apply(self, chunk: Sequence[_Indexed]) -> None:
        existing = repo.members_by_index_bulk(self._session, indexes=[i.id_index for i in chunk])
        new: list[_Indexed] = []
        changed: list[tuple[repo.ExistingMember, _Indexed]] = []
        for item in chunk:
            old = existing.get(item.id_index)
            if old is None:
                new.append(item)
            elif old.org_id != item.row.org_id:
                self._problem(item.row.row, "id_number", "registered_elsewhere",
                              f"already a member of another organisation ({old.public_id}); "
                              "use `cardsvc members transfer`")
            elif _same(old, item):
                self.tally.unchanged += 1
            else:
                changed.append((old, item))
        self._insert(new)
        self._update(changed)

    def _insert(self, new: Sequence[_Indexed]) -> None:
        rows = [self._member_values(item) for item in new]
        ids = repo.insert_members_bulk(self._session, rows=rows)
        by_public = {row["public_id"]: item for row, item in zip(rows, new, strict=True)}
        links = {ids[p]: item.row.categories for p, item in by_public.items() if item.row.categories}
        repo.replace_categories_bulk(self._session, links=links, replace=False)
        repo.add_events_bulk(self._session, member_ids=ids.values(), action="imported", detail="import",
                             at=self._now)
        self.tally.created += len(rows)

    def _member_values(self, item: _Indexed) -> dict[str, Any]:
        public_id, row = new_public_id(), item.row
        return {
            "public_id": public_id, "name": row.name, "status": MemberStatus.active.value,
            "joined_on": row.joined_on, "org_id": row.org_id, "gender": row.id_number.gender.value,
            "birth_date": row.id_number.birth_date,
            "id_sealed": self._cipher.seal(row.id_number.value, record=public_id, field="id_number"),
            "id_index": item.id_index, "key_version": self._cipher.current_version,
            "created_at": self._now, "updated_at": self._now, "erased_at": None,
            **self._phone_values(public_id, item),
        }

    def _phone_values(self, public_id: str, item: _Indexed) -> dict[str, Any]:
        phone = item.row.phone
        sealed = self._cipher.seal(phone, record=public_id, field="phone") if phone else None
        return {"phone_sealed": sealed, "phone_index": item.phone_index}

    def _update(self, changed: Sequence[tuple[repo.ExistingMember, _Indexed]]) -> None:
        if not changed:
            return
        rows = [self._update_values(old, item) for old, item in changed]
        repo.update_members_bulk(self._session, rows=rows)
        links = {old.id: item.row.categories for old, item in changed}
        repo.replace_categories_bulk(self._session, links=links, replace=True)
        repo.add_events_bulk(self._session, member_ids=links, action="updated", detail="import",
                             at=self._now)
        self.tally.updated += len(rows)

    def _update_values(self, old: repo.ExistingMember, item: _Indexed) -> dict[str, Any]:
        # Both sealed fields are rewritten so the row's key_version stays true for both.
        sealed_id = self._cipher.seal(item.row.id_number.value, record=old.public_id, field="id_number")
        return {"member_id": old.id, "name": item.row.name, "joined_on": item.row.joined_on,
                "id_sealed": sealed_id, "key_version": self._cipher.current_version,
                "updated_at": self._now, **self._phone_values(old.public_id, item)}


def _same(old: repo.ExistingMember, item: _Indexed) -> bool:
    row = item.row
    return (old.name == row.name and old.phone_index == item.phone_index and old.joined_on == row.joined_on
            and old.categories == row.categories)


def load_context(session: Session, *, org_code: str | None, today: dt.date) -> RowContext:
    """Organisations and categories by code and name, and the ``--org`` default."""
    orgs: dict[str, OrgRef] = {}
    for org in repo.list_orgs(session):
        ref = OrgRef(org.id or 0, org.kind)
        orgs.setdefault(normalise_text(org.name), ref)
        orgs[org.code] = ref
    categories: dict[str, int] = {}
    for category in repo.list_categories(session):
        categories[category.code] = categories[category.label] = category.id or 0
    default = orgs[repo.get_org(session, code=org_code).code] if org_code else None
    return RowContext(orgs=orgs, categories=categories, default_org=default, today=today)


def import_members(session: Session, cipher: PiiCipher, path: Path, *, org_code: str | None,
                   now: dt.datetime, progress: Progress | None = None) -> ImportReport:
    """Run the import inside the caller's transaction and return its report."""
    context = load_context(session, org_code=org_code, today=now.date())
    with open_table(path, MEMBER_ALIASES, MEMBER_REQUIRED) as table:
        if "org" not in table.columns.index and org_code is None:
            _no_org_column()
        run = MemberImport(session, cipher, context, table.columns, now=now)
        run.run(table.rows, progress, table.estimated_rows)
    notices = tuple(f"{u} is not a known column and was ignored" for u in table.columns.unknown)
    tally = run.tally
    return ImportReport(path.name, False, tally.rows_read, tally.created, tally.updated, tally.unchanged,
                        tuple(sorted(tally.problems, key=lambda p: p.row)), notices)


def _no_org_column() -> None:
    raise ImportFileError("the file has no 工会/单位 (org) column and no --org was given",
                          reason="no_org_column", columns=("工会/单位",),
                          hint="add the column or pass --org CODE for a single-union list")
