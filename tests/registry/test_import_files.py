"""Hostile and broken member files: clear errors, bounded memory and time, nothing half-imported."""

from __future__ import annotations

import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from cardsvc.errors import ImportFileError
from cardsvc.registry.columns import MEMBER_ALIASES, MEMBER_REQUIRED
from cardsvc.registry.models import Member
from cardsvc.registry.services import RegistryService
from cardsvc.registry.sources import open_table
from tests.support.member_lists import generate, write_csv, write_xlsx

GOOD_ROWS = "姓名,身份证号,工会\n张三,11010519491231002X,G1\n李四,360426199101010071,G1\n"


def read_all(path: Path) -> list[tuple[object, ...]]:
    with open_table(path, MEMBER_ALIASES, MEMBER_REQUIRED) as table:
        return [row.cells for row in table.rows]


def refused(path: Path, match: str) -> ImportFileError:
    with pytest.raises(ImportFileError, match=match) as info:
        read_all(path)
    return info.value


def members(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Member)).one()[0])


def test_random_bytes_are_not_a_member_list(tmp_path: Path) -> None:
    path = tmp_path / "list.xlsx"
    path.write_bytes(bytes(range(256)) * 10)
    refused(path, "binary file")


def test_truncated_xlsx(tmp_path: Path) -> None:
    good = tmp_path / "good.xlsx"
    write_xlsx(good, generate(50, orgs=("G1",)))
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(good.read_bytes()[:2000])
    refused(bad, "not an XLSX file")


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "photos.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.jpg", b"\xff\xd8\xff" * 100)
    refused(path, "not a readable XLSX workbook")


def test_legacy_xls(tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + bytes(512))
    error = refused(path, "legacy .xls")
    assert ".xlsx" in error.diagnostics()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    refused(path, "is empty")


def test_zip_bomb_is_refused_from_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (64 * 2**20))
    started = time.perf_counter()
    refused(path, "zip bomb")
    assert time.perf_counter() - started < 2  # decided from the zip directory, nothing unpacked


def test_many_parts_just_under_the_per_part_limit_are_a_zip_bomb(tmp_path: Path) -> None:
    """Regression: the ratio was checked only for parts over 10 MiB, so 60 parts of 9 MiB zeros
    (540 MiB from a ~0.5 MiB file) passed the directory check."""
    path = tmp_path / "spread-bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for index in range(60):
            archive.writestr(f"xl/media/part{index}.bin", b"\x00" * (9 * 2**20))
    refused(path, "zip bomb")


def test_a_zip_of_tiny_entries_is_refused_before_scanning_them(tmp_path: Path) -> None:
    path = tmp_path / "entries.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(10_001):
            archive.writestr(f"x{index}.xml", b"")
    started = time.perf_counter()
    refused(path, "zip entries")
    assert time.perf_counter() - started < 2


def _xlsx_with_sheet_xml(tmp_path: Path, sheet_xml: bytes) -> Path:
    source = tmp_path / "source.xlsx"
    book = Workbook()
    book.active.append(["姓名", "身份证号"])
    book.save(source)
    target = tmp_path / "evil.xlsx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = sheet_xml if info.filename == "xl/worksheets/sheet1.xml" else src.read(info)
            dst.writestr(info.filename, data)
    return target


LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10)
                     for i in range(1, 10))
          + b']>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
          + b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>')


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    refused(_xlsx_with_sheet_xml(tmp_path, LAUGHS), "DTD")


def test_dtd_hidden_past_the_prescan_is_still_refused_by_defusedxml(tmp_path: Path) -> None:
    hidden = LAUGHS.replace(b"<!DOCTYPE", b"<!--" + b" " * 8000 + b"-->\n<!DOCTYPE", 1)
    hidden = hidden.replace(b'<?xml version="1.0"?>\n', b"")
    error = refused(_xlsx_with_sheet_xml(tmp_path, hidden), "cannot be read|not a readable")
    assert isinstance(error.__cause__, Exception)


def test_a_million_empty_rows_end_the_table_quickly(tmp_path: Path) -> None:
    path = tmp_path / "empty_rows.csv"
    path.write_text(GOOD_ROWS + ",,\n" * 1_000_000, encoding="utf-8")
    tracemalloc.start()
    started = time.perf_counter()
    rows = read_all(path)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(rows) == 2 and elapsed < 10 and peak < 20 * 2**20


def test_a_million_empty_xlsx_rows_after_the_header(tmp_path: Path) -> None:
    rows = "".join(f'<row r="{i}"/>' for i in range(2, 1_000_002)).encode()
    sheet = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             b'<row r="1"><c r="A1" t="inlineStr"><is><t>\xe5\xa7\x93\xe5\x90\x8d</t></is></c>'
             b'<c r="B1" t="inlineStr"><is><t>id_number</t></is></c></row>'
             + rows + b"</sheetData></worksheet>")
    started = time.perf_counter()
    refused(_xlsx_with_sheet_xml(tmp_path, sheet), "no data rows")
    assert time.perf_counter() - started < 30  # openpyxl streams the sheet; memory stays flat


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("姓名,身份证号,手机号\n", encoding="utf-8")
    refused(path, "header row but no data rows")


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "missing.csv"
    path.write_text("姓名,手机号,生日\n张三,13800138000,1990-01-01\n", encoding="utf-8")
    error = refused(path, "missing required columns: id_number")
    assert "身份证号" in error.message and "'生日'" in error.message


def test_duplicate_columns_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("姓名,身份证号,身份证号码\n张三,11010519491231002X,11010519491231002X\n",
                    encoding="utf-8")
    refused(path, "both mean 'id_number'")


@pytest.mark.parametrize("data", [
    "姓名,身份证号\n".encode("utf-16"),
    "姓名,身份证号\n张三,".encode() + b"\x80\x80\xff\n",
])
def test_wrong_encodings(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "enc.csv"
    path.write_bytes(data)
    error = refused(path, "UTF-16|neither UTF-8 nor GB18030")
    assert "UTF-8" in error.diagnostics()


def test_title_rows_above_the_header_and_header_variants(tmp_path: Path) -> None:
    path = tmp_path / "title.csv"
    path.write_text("某区总工会会员名册（2025年）\n\n序号,姓名*,身份证号（必填）,Phone,备注,籍贯\n"
                    "1,张三,11010519491231002X,13800138000,,北京\n", encoding="utf-8-sig")
    with open_table(path, MEMBER_ALIASES, MEMBER_REQUIRED) as table:
        assert table.header_row == 3
        assert set(table.columns.index) == {"name", "id_number", "phone"}
        assert table.columns.unknown == ("column F '籍贯'",)
        assert [r.number for r in table.rows] == [4]


def test_tab_separated_text_is_read(tmp_path: Path) -> None:
    path = tmp_path / "tabs.csv"
    path.write_text(GOOD_ROWS.replace(",", "\t"), encoding="gb18030")
    assert [r[0] for r in read_all(path)] == ["张三", "李四"]


def test_failure_mid_file_leaves_nothing(service: RegistryService, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    write_csv(path, generate(5000, orgs=("G1",), defect_rate=0))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('9999,"' + "x" * 200_000 + '",\n')  # larger than the csv module's field limit
    with pytest.raises(ImportFileError, match="malformed CSV"):
        service.import_members(path)
    assert members(engine) == 0


def test_unknown_columns_are_reported_as_notices(service: RegistryService, tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text("姓名,身份证号,工会,爱好\n张三,11010519491231002X,G1,篮球\n", encoding="utf-8")
    report = service.import_members(path)
    assert report.created == 1
    assert report.notices == ("column D '爱好' is not a known column and was ignored",)


def test_no_org_column_and_no_option(service: RegistryService, tmp_path: Path) -> None:
    path = tmp_path / "noorg.csv"
    path.write_text("姓名,身份证号\n张三,11010519491231002X\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="--org"):
        service.import_members(path)
