"""Realistic generated member lists (XLSX / CSV) with known defects, for the tests and the bench.

``generate(n, orgs=…, seed=…)`` yields rows the way clerks' files look: common and compound
surnames, minority names with ``·``, ID numbers from several regions including residence permits
(81/82/83) and foreigners' permanent-residence IDs (9…), full-width digits and lower-case ``x``.
About 1 row in 16 carries exactly one defect; each defective row records the (field, reason) the
importer must report, so a test can compare the whole report exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cardsvc.registry.identity import check_character

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
            "于蒋蔡余杜叶程苏魏吕丁任沈")
COMPOUND = ("欧阳", "司马", "上官", "诸葛", "东方")
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红建国志强文斌海燕春梅晓东丹丹"
MINORITY = ("阿依古丽·买买提", "努尔兰·阿布都", "热依拉·吐尔逊", "扎西·多吉", "巴特尔·额尔敦")
REGIONS = ("110105", "310104", "320102", "330106", "440305", "510107", "420111", "610113", "370202",
           "810000", "820000", "830000", "911000")
CATEGORIES = ("劳模", "先进职工", "一线职工", "农民工", "一线职工、农民工", "")
HEADER = ("序号", "姓名", "性别", "身份证号", "手机号", "工会/单位", "类别", "入会日期", "备注")
TODAY = dt.date(2025, 6, 1)

# The union hierarchy the generated lists refer to (G1, G2 and G3 = 第三工会 are grassroots unions).
ORGS_CSV = """编码,名称,类型,上级编码,统一社会信用代码,联系人
D01,某区总工会,区总工会,,,
T01,城关镇总工会,镇总工会,D01,,
P01,高新园区工会,园区工会,D01,,
G1,城关镇第一机械厂工会,企业工会,T01,91350100M000100Y43,
G2,城关镇农贸市场工会联合会,市场工会联合会,T01,,
G3,第三工会,项目工会,P01,,
"""

# field label as written in HEADER, and the importer's reason code
DEFECTS: tuple[tuple[str, str, str], ...] = (
    ("check_digit", "身份证号", "id_check_digit"),
    ("bad_date", "身份证号", "id_birth_date"),
    ("future_birth", "身份证号", "id_birth_date"),
    ("as_number", "身份证号", "id_stored_as_number"),
    ("scientific", "身份证号", "id_scientific_notation"),
    ("short_id", "身份证号", "id_shape"),
    ("missing_id", "身份证号", "missing"),
    ("bad_phone", "手机号", "phone_shape"),
    ("missing_name", "姓名", "missing"),
    ("long_name", "姓名", "name_length"),
    ("unknown_org", "工会/单位", "unknown_org"),
    ("unknown_category", "类别", "unknown_category"),
    ("duplicate", "身份证号", "duplicate_in_file"),
)


@dataclass(frozen=True)
class Row:
    number: int  # spreadsheet row (header is row 1)
    cells: tuple[object, ...]
    id_number: str | None  # canonical (NFKC, upper) when the row is valid
    defect: str | None
    expected: tuple[str, str] | None  # (field label, reason) when the row must be rejected

    def expected_in(self, fmt: str) -> tuple[str, str] | None:
        """The expected problem when the list is saved as ``fmt`` (CSV turns numbers into text)."""
        if fmt == "csv" and self.defect == "as_number":
            return "身份证号", "id_scientific_notation"
        return self.expected


def make_id(rng: random.Random, *, region: str | None = None, birth: dt.date | None = None,
            female: bool | None = None) -> str:
    region = region or rng.choice(REGIONS)
    birth = birth or dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(45 * 365))
    seq = rng.randrange(0, 100) * 10 + (rng.randrange(0, 5) * 2 + (0 if female else 1)
                                        if female is not None else rng.randrange(10))
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    return body + check_character(body)


def make_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.01:
        return rng.choice(MINORITY)
    surname = rng.choice(COMPOUND) if roll < 0.03 else rng.choice(SURNAMES)
    return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2, 2))))


def make_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def generate(n: int, *, orgs: Sequence[str], seed: int = 20250601, defect_rate: float = 1 / 16,
             empty_every: int = 0) -> Iterator[Row]:
    """``n`` data rows (plus an empty row every ``empty_every`` rows, not counted)."""
    rng = random.Random(seed)
    issued: list[str] = []
    used: set[str] = set()
    number = 1
    for index in range(n):
        number += 1
        if empty_every and index and index % empty_every == 0:
            number += 1  # an empty spreadsheet row the importer must skip
        valid_id = _unique_id(rng, used)
        defect = rng.choice(DEFECTS) if rng.random() < defect_rate and issued else None
        yield _row(rng, number, index + 1, valid_id, defect, issued, orgs)
        if defect is None:
            issued.append(valid_id)


def _unique_id(rng: random.Random, used: set[str]) -> str:
    while True:
        value = make_id(rng)
        if value not in used:
            used.add(value)
            return value


def _row(rng: random.Random, number: int, seq: int, valid_id: str, defect: tuple[str, str, str] | None,
         issued: list[str], orgs: Sequence[str]) -> Row:
    name, phone = make_name(rng), make_phone(rng)
    org, category = rng.choice(orgs), rng.choice(CATEGORIES)
    joined: object = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(9000))
    id_cell: object = _styled(rng, valid_id)
    kind = defect[0] if defect else None
    if kind == "duplicate":
        id_cell = rng.choice(issued)
    elif kind is not None and kind in _ID_DEFECTS:
        id_cell = _ID_DEFECTS[kind](rng, valid_id)
    name = {"missing_name": "", "long_name": "王" * 31}.get(kind or "", name)
    phone = "1234567890" if kind == "bad_phone" else phone
    org = "不存在的工会" if kind == "unknown_org" else org
    category = "劳动模范候选" if kind == "unknown_category" else category
    gender = "男" if int(valid_id[16]) % 2 else "女"
    cells = (seq, name, gender if kind not in _GENDERLESS else "", id_cell, phone, org, category,
             joined, "")
    expected = (defect[1], defect[2]) if defect else None
    return Row(number, cells, None if defect else valid_id, kind, expected)


def _styled(rng: random.Random, value: str) -> str:
    roll = rng.random()
    if roll < 0.02:  # full-width digits, as some Excel input methods produce
        return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)
    if roll < 0.04 and value.endswith("X"):
        return value[:-1] + "x"
    if roll < 0.06:
        return f" {value} "
    return value


def _bad_check(_rng: random.Random, value: str) -> str:
    chars = "0123456789X"
    return value[:17] + chars[(chars.index(value[17]) + 1) % 11]


def _with_birth(value: str, birth: str) -> str:
    body = value[:6] + birth + value[14:17]
    return body + check_character(body)


_ID_DEFECTS = {
    "check_digit": _bad_check,
    "bad_date": lambda _r, v: _with_birth(v, "19990230"),
    "future_birth": lambda _r, v: _with_birth(v, f"{max(TODAY, dt.date.today()).year + 1}0101"),
    "as_number": lambda _r, v: float(v[:17] + "0"),
    "scientific": lambda _r, v: f"{int(v[:17]) / 1e16:.5f}E+17",
    "short_id": lambda _r, v: v[:15],
    "missing_id": lambda _r, _v: "",
}

_GENDERLESS = frozenset(_ID_DEFECTS) | {"duplicate"}


def write_xlsx(path: Path, rows: Sequence[Row] | Iterator[Row]) -> None:
    """Write rows as an XLSX (ID column as text, as the template tells clerks to do)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("会员名册")
    sheet.append(list(HEADER))
    last = 1
    for row in rows:
        for _ in range(row.number - last - 1):
            sheet.append([])
        last = row.number
        sheet.append(list(row.cells))
    book.save(path)
    _add_dimension(path, f"A1:{chr(64 + len(HEADER))}{last}")


def _add_dimension(path: Path, ref: str) -> None:
    """Excel writes ``<dimension>`` at the top of each sheet; openpyxl's write-only mode does not."""
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = parts[sheet].replace(b"</sheetPr>", f'</sheetPr><dimension ref="{ref}"/>'.encode(), 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)


def write_csv(path: Path, rows: Sequence[Row] | Iterator[Row], *, encoding: str = "utf-8-sig") -> None:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        last = 1
        for row in rows:
            for _ in range(row.number - last - 1):
                writer.writerow([])
            last = row.number
            writer.writerow([_csv_cell(c) for c in row.cells])


def _csv_cell(cell: object) -> object:
    if isinstance(cell, float):
        return f"{cell:.5E}"  # what Excel writes for a long number saved to CSV
    return cell
