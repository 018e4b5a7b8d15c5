"""The per-row import report, written as XLSX or CSV (by the output file's extension).

One line per problem: row number, column (as the file names it), reason code, explanation; then
the totals. It never contains personal data: rows are named by number only.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from cardsvc.errors import ConfigError
from cardsvc.registry.importer import ImportReport

HEADER = ("行号 row", "字段 field", "原因 reason", "说明 message")


# What makes Excel, WPS or LibreOffice read a cell as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def report_lines(report: ImportReport) -> Iterator[tuple[object, ...]]:
    """Every line of the report, each text cell already made inert."""
    yield HEADER
    for line in _raw_lines(report):
        yield tuple(_inert(cell) if isinstance(cell, str) else cell for cell in line)


def _raw_lines(report: ImportReport) -> Iterator[tuple[object, ...]]:
    for problem in report.problems:
        yield problem.row, problem.field, problem.reason, problem.message
    yield ()
    yield from _totals(report)
    for notice in report.notices:
        yield "notice", notice


def _inert(text: str) -> str:
    """Headers and the file name come from the clerk: never let a cell become a formula."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _totals(report: ImportReport) -> list[tuple[str, object]]:
    return [("source", report.source), ("dry_run", "yes" if report.dry_run else "no"),
            ("rows_read", report.rows_read), ("created", report.created), ("updated", report.updated),
            ("unchanged", report.unchanged), ("rejected_rows", report.rejected_rows)]


def write_report(report: ImportReport, out: Path) -> None:
    """Write ``report`` to ``out`` (``.xlsx`` or ``.csv``; CSV is UTF-8 with BOM for Excel)."""
    suffix = out.suffix.lower()
    if suffix == ".csv":
        with out.open("w", encoding="utf-8-sig", newline="") as handle:
            csv.writer(handle).writerows(report_lines(report))
    elif suffix == ".xlsx":
        _write_xlsx(report, out)
    else:
        raise ConfigError(f"report file must end in .xlsx or .csv, not {suffix or 'nothing'}")


def _write_xlsx(report: ImportReport, out: Path) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("import report")
    for line in report_lines(report):
        sheet.append(list(line))
    book.save(out)
