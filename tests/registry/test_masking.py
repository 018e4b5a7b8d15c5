"""Display masking: examples from the issue and properties over generated values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.registry.masking import COMPOUND_SURNAMES, Audience, PiiKind, mask


@pytest.mark.parametrize(("name", "masked"), [
    ("张小三", "张*三"), ("李四", "李*"), ("王", "*"), ("欧阳修", "欧阳*"), ("欧阳小明", "欧阳*明"),
    ("司马相如", "司马*如"), ("张大小三", "张**三"), ("阿依古丽·买买提", "阿*提"), ("欧阳", "欧*"),
    ("买·提", "买*"), ("A·B", "A*"), ("阿·买提", "阿*提"),  # two-letter "·" names: was 买*提 (all shown)
])
def test_name_examples(name: str, masked: str) -> None:
    assert mask(PiiKind.name, name) == masked
    assert mask(PiiKind.name, name, audience=Audience.partner) == masked


def test_id_and_phone_examples() -> None:
    assert mask(PiiKind.id_number, "11010519491231002X") == "110105********002X"
    assert mask(PiiKind.id_number, "11010519491231002X", audience=Audience.partner) == "002X"
    assert mask(PiiKind.phone, "13800138000") == "138****8000"
    assert mask(PiiKind.phone, "13800138000", audience=Audience.partner) == ""


_han = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_names = st.text(_han, min_size=1, max_size=30)
_ids = st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True)
_phones = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@given(_names)
def test_name_mask_keeps_length_and_hides_the_middle(name: str) -> None:
    masked = mask(PiiKind.name, name)
    assert len(masked) == len(name)
    assert "*" in masked
    surname = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
    hidden = name[surname:-1] if len(name) - surname >= 2 else name[surname:]
    assert masked.count("*") == max(len(hidden), 1)
    if len(name) > 1:
        assert masked.startswith(name[:surname])


@given(_ids)
def test_id_mask_shows_only_region_and_last_four(value: str) -> None:
    masked = mask(PiiKind.id_number, value)
    assert masked[:6] == value[:6] and masked[-4:] == value[-4:] and masked[6:14] == "*" * 8
    assert mask(PiiKind.id_number, value, audience=Audience.partner) == value[-4:]


@given(_phones)
def test_phone_mask(value: str) -> None:
    assert mask(PiiKind.phone, value) == value[:3] + "****" + value[-4:]
    assert mask(PiiKind.phone, value, audience=Audience.partner) == ""


@given(st.text(min_size=0, max_size=12))
def test_short_values_are_fully_hidden(value: str) -> None:
    masked = mask(PiiKind.phone, value[:7])
    assert masked == "*" * len(value[:7])


_dot_names = st.builds(lambda a, b: f"{a}·{b}", st.text(_han, min_size=1, max_size=5),
                       st.text(_han, min_size=1, max_size=5))


@given(_dot_names)
def test_dot_name_mask_always_hides_a_letter(name: str) -> None:
    masked = mask(PiiKind.name, name)
    letters = name.replace("·", "")
    shown = masked.replace("*", "")
    assert "*" in masked and len(shown) < len(letters) and letters.startswith(shown[:1])
