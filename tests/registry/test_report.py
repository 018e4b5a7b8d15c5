"""The per-row import report as CSV and XLSX."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook

from cardsvc.errors import ConfigError
from cardsvc.registry.importer import ImportReport
from cardsvc.registry.report import HEADER, write_report
from cardsvc.registry.rows import RowProblem

REPORT = ImportReport(
    source="list.xlsx", dry_run=False, rows_read=5, created=2, updated=1, unchanged=0,
    problems=(RowProblem(3, "身份证号", "id_check_digit", "check character does not match"),
              RowProblem(3, "手机号", "phone_shape", "not a mainland mobile number"),
              RowProblem(6, "=HYPERLINK(\"x\")", "missing", "-1+1")),
    notices=("column H '爱好' is not a known column and was ignored",),
)


def test_csv_report(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    write_report(REPORT, out)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel opens UTF-8 CSV correctly
    with out.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle))
    assert tuple(lines[0]) == HEADER
    assert lines[1:4] == [["3", "身份证号", "id_check_digit", "check character does not match"],
                          ["3", "手机号", "phone_shape", "not a mainland mobile number"],
                          ["6", "'=HYPERLINK(\"x\")", "missing", "'-1+1"]]
    totals = {line[0]: line[1] for line in lines[5:] if line}
    assert totals["rows_read"] == "5" and totals["rejected_rows"] == "2" and totals["created"] == "2"
    assert totals["notice"].startswith("column H")


def test_xlsx_report_has_no_formulas(tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    write_report(REPORT, out)
    book = load_workbook(out)
    cells = [c for row in book.worksheets[0].iter_rows() for c in row]
    book.close()
    assert all(c.data_type != "f" for c in cells)
    assert [c.value for c in cells if c.row == 4][:2] == [6, "'=HYPERLINK(\"x\")"]


def test_report_needs_a_known_extension(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.xlsx or \.csv"):
        write_report(REPORT, tmp_path / "report.txt")


HOSTILE = ImportReport(
    source="=HYPERLINK(\"http://x\").xlsx", dry_run=True, rows_read=1, created=0, updated=0,
    unchanged=0, problems=(RowProblem(2, "\t=1+1", "missing", "\r=cmd|' /C calc'!A0"),),
    notices=("@SUM(1) is not a known column and was ignored",),
)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_every_text_cell_is_inert(tmp_path: Path, suffix: str) -> None:
    """Regression: the file name (totals) and notices were written raw; tab/CR starts were missed."""
    out = tmp_path / f"report{suffix}"
    write_report(HOSTILE, out)
    if suffix == ".csv":
        with out.open(encoding="utf-8-sig", newline="") as handle:
            cells = [cell for line in csv.reader(handle) for cell in line]
    else:
        book = load_workbook(out)
        found = [c for row in book.worksheets[0].iter_rows() for c in row if c.value is not None]
        book.close()
        assert all(c.data_type != "f" for c in found)
        cells = [str(c.value) for c in found]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert dangerous == []
    assert "'=HYPERLINK(\"http://x\").xlsx" in cells and "'\t=1+1" in cells
