"""The generated 20,000-row list: exact report, idempotent re-import, CSV encodings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cardsvc.registry.services import RegistryService
from tests.support.member_lists import Row, generate, write_csv, write_xlsx

ORG_VALUES = ("G1", "G2", "第三工会")


def _expected(rows: list[Row], fmt: str) -> list[tuple[int, str, str]]:
    return sorted((r.number, *e) for r in rows if (e := r.expected_in(fmt)) is not None)


def _problems(report) -> list[tuple[int, str, str]]:
    return sorted((p.row, p.field, p.reason) for p in report.problems)


@pytest.mark.slow
def test_20000_row_xlsx_exact_report_and_idempotent(service: RegistryService, tmp_path: Path) -> None:
    rows = list(generate(20_000, orgs=ORG_VALUES, empty_every=4000))
    path = tmp_path / "members.xlsx"
    write_xlsx(path, rows)
    started = time.perf_counter()
    report = service.import_members(path)
    elapsed = time.perf_counter() - started
    valid = [r for r in rows if r.expected is None]
    assert _problems(report) == _expected(rows, "xlsx")
    assert report.rows_read == 20_000
    assert (report.created, report.updated, report.unchanged) == (len(valid), 0, 0)
    again = service.import_members(path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(valid))
    assert _problems(again) == _expected(rows, "xlsx")
    print(f"20k XLSX import: {elapsed:.2f} s")
