"""Display masking of personal data: the one function every screen, report and API goes through.

Staff (clerks) see ``张*三``, ``110105********002X`` and ``138****8000``; partners see the masked name
and the last four characters of the ID number only, never a phone.
"""

from __future__ import annotations

from enum import StrEnum

# Two-character surnames (复姓) in common use; a name starting with one keeps both characters.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 令狐 夏侯 轩辕 端木 独孤 南宫 西门 "
    "百里 呼延 万俟 闻人 澹台 公冶 太史 申屠 赫连 钟离 濮阳 单于 拓跋 完颜 淳于 第五 司空".split()
)


class PiiKind(StrEnum):
    name = "name"
    id_number = "id_number"
    phone = "phone"


class Audience(StrEnum):
    staff = "staff"
    partner = "partner"


def mask(kind: PiiKind, value: str, *, audience: Audience = Audience.staff) -> str:
    """Mask ``value`` of ``kind`` for ``audience``; the result never holds the hidden part."""
    if kind is PiiKind.name:
        return _mask_name(value)
    if kind is PiiKind.id_number:
        return value[-4:] if audience is Audience.partner else _keep_ends(value, head=6, tail=4)
    if audience is Audience.partner:
        return ""
    return _keep_ends(value, head=3, tail=4)


def _mask_name(name: str) -> str:
    if "·" in name:  # minority names: first character of the first part, last of the last part
        shown_last = len(name.replace("·", "")) > 2  # "买·提" would otherwise show every letter
        return f"{name[0]}*{name[-1]}" if shown_last else f"{name[0]}*"
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[:1]
    rest = len(name) - len(surname)
    if rest <= 0:
        return "*"
    if rest == 1:
        return f"{surname}*"
    return f"{surname}{'*' * (rest - 1)}{name[-1]}"


def _keep_ends(value: str, *, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value)
    return f"{value[:head]}{'*' * (len(value) - head - tail)}{value[-tail:]}"
