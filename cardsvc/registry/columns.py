"""Header mapping for member and organisation lists: Chinese and English column names.

A header cell is normalised (NFKC, no spaces, lower case, no ``*`` required-marks, no bracketed
notes such as ``（必填）``) and looked up in an alias table. Unknown columns are reported, not fatal;
missing required columns are fatal with a message naming what is missing and what was found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cardsvc.errors import ImportFileError

IGNORED = "_ignored"

MEMBER_ALIASES: Mapping[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "会员姓名", "职工姓名", "name", "fullname", "membername"),
    "id_number": ("身份证号", "身份证号码", "身份证", "公民身份号码", "证件号码", "证件号", "idnumber",
                  "idno", "idcard", "id"),
    "phone": ("手机号", "手机号码", "手机", "联系电话", "电话", "联系方式", "phone", "mobile", "tel"),
    "org": ("工会/单位", "工会", "单位", "所属工会", "基层工会", "工会名称", "单位名称", "工会编码",
            "org", "organisation", "organization", "union", "orgcode"),
    "categories": ("类别", "人员类别", "职工类别", "会员类别", "category", "categories"),
    "joined_on": ("入会日期", "入会时间", "joined", "joinedon", "joindate"),
    "gender": ("性别", "gender", "sex"),
    IGNORED: ("序号", "编号", "备注", "no", "seq", "remark", "remarks", "note", "notes"),
}
MEMBER_REQUIRED = ("name", "id_number")

ORG_ALIASES: Mapping[str, tuple[str, ...]] = {
    "code": ("编码", "代码", "工会编码", "组织编码", "code"),
    "name": ("名称", "工会名称", "组织名称", "name"),
    "kind": ("类型", "组织类型", "工会类型", "type", "kind"),
    "parent_code": ("上级编码", "上级工会编码", "上级", "parent", "parentcode"),
    "uscc": ("统一社会信用代码", "信用代码", "uscc"),
    "contact": ("联系人", "联系方式", "contact"),
    IGNORED: ("序号", "备注", "no", "remark", "notes"),
}
ORG_REQUIRED = ("code", "name", "kind")

_BRACKETED = re.compile(r"\(.*?\)|\[.*?\]|【.*?】")


def normalise_header(cell: object) -> str:
    text = unicodedata.normalize("NFKC", "" if cell is None else str(cell))
    text = _BRACKETED.sub("", text)
    return re.sub(r"[\s*_\-:]", "", text).lower()


@dataclass(frozen=True)
class ColumnMap:
    """Which column index holds which field, the file's own header text, and what was not used."""

    index: Mapping[str, int]
    labels: Mapping[str, str]
    unknown: tuple[str, ...]

    def label(self, field: str) -> str:
        return self.labels.get(field, field)


def recognised(header: Sequence[object], aliases: Mapping[str, tuple[str, ...]]) -> int:
    """How many header cells name a known field (used to find the header row under a title)."""
    lookup = _lookup(aliases)
    return sum(1 for cell in header if lookup.get(normalise_header(cell), IGNORED) != IGNORED)


def map_columns(header: Sequence[object], aliases: Mapping[str, tuple[str, ...]],
                required: Sequence[str]) -> ColumnMap:
    """Map a header row; raises :class:`ImportFileError` for missing or repeated columns."""
    lookup = _lookup(aliases)
    index: dict[str, int] = {}
    labels: dict[str, str] = {}
    unknown: list[str] = []
    for position, cell in enumerate(header):
        key = normalise_header(cell)
        if not key:
            continue
        field = lookup.get(key)
        if field is None:
            unknown.append(f"{_column_letter(position)} {str(cell).strip()!r}")
        elif field != IGNORED:
            _claim(field, position, index, str(cell).strip())
            labels[field] = str(cell).strip()
    _require(required, index, header, aliases)
    return ColumnMap(index=index, labels=labels, unknown=tuple(unknown))


def _claim(field: str, position: int, index: dict[str, int], label: str) -> None:
    if field in index:
        raise ImportFileError(f"columns {_column_letter(index[field])} and {_column_letter(position)} "
                              f"both mean {field!r} (second one: {label!r})",
                              reason="duplicate_column", columns=(label,),
                              hint="delete or rename one of them")
    index[field] = position


def _require(required: Sequence[str], index: Mapping[str, int], header: Sequence[object],
             aliases: Mapping[str, tuple[str, ...]]) -> None:
    missing = [f for f in required if f not in index]
    if not missing:
        return
    wanted = "; ".join(f"{f} ({' / '.join(aliases[f][:3])})" for f in missing)
    found = ", ".join(repr(str(c).strip()) for c in header if c not in (None, "")) or "nothing"
    raise ImportFileError(f"missing required columns: {wanted}; the header row has {found}",
                          reason="missing_columns", columns=tuple(aliases[f][0] for f in missing),
                          hint="the first row (or the row under a title) must name the columns")


def _lookup(aliases: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {normalise_header(alias): field for field, names in aliases.items() for alias in names}


def _column_letter(position: int) -> str:
    letters = ""
    position += 1
    while position:
        position, rem = divmod(position - 1, 26)
        letters = chr(65 + rem) + letters
    return f"column {letters}"
