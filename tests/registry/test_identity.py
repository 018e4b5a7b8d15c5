"""ID numbers (GB 11643-1999), names and phones: known answers, edge cases and properties."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.errors import InvalidRecord
from cardsvc.registry.identity import (
    Gender,
    check_character,
    parse_id_number,
    parse_name,
    parse_phone,
)

TODAY = dt.date(2025, 6, 1)

# Valid numbers from public sources:
#  - GB 11643-1999 §8 example: 11010519491231002X (also in the skeleton's redaction test).
#  - arthurdejong/python-stdnum : stdnum/cn/ric.py docstring: 360426199101010071.
#  - issue9/is : gb11643_test.go: 350303199002033073, 331122197905116239, 513330199111066159,
#    33050219880702447x / 33050219880702447X (valid) and 330502198807024471 (wrong check digit).
VALID = ("11010519491231002X", "360426199101010071", "350303199002033073", "331122197905116239",
         "513330199111066159", "33050219880702447X")


@pytest.mark.parametrize("number", VALID)
def test_public_vectors_are_accepted(number: str) -> None:
    assert parse_id_number(number, today=TODAY).value == number


def test_public_wrong_check_digit_is_rejected() -> None:  # issue9/is : gb11643_test.go
    with pytest.raises(InvalidRecord) as info:
        parse_id_number("330502198807024471", today=TODAY)
    assert info.value.reason == "id_check_digit" and info.value.field == "id_number"


def test_birth_date_and_gender_are_derived() -> None:
    parsed = parse_id_number("11010519491231002X", today=TODAY)
    assert parsed.birth_date == dt.date(1949, 12, 31)
    assert parsed.gender is Gender.female  # 17th digit 2: even
    assert parse_id_number("360426199101010071", today=TODAY).gender is Gender.male


@pytest.mark.parametrize("raw", ["１１０１０５１９４９１２３１００２Ｘ", "11010519491231002x",
                                 " 110105 19491231 002X ", "１１０１０５１９４９１２３１００２ｘ"])
def test_excel_forms_normalise(raw: str) -> None:
    assert parse_id_number(raw, today=TODAY).value == "11010519491231002X"


@pytest.mark.parametrize("prefix", ["810000", "820000", "830000", "911000", "990000"])
def test_residence_permits_and_foreigners_ids_are_accepted(prefix: str) -> None:
    body = f"{prefix}19900101001"
    number = body + check_character(body)
    assert parse_id_number(number, today=TODAY).value == number


def test_unknown_region_codes_are_not_rejected() -> None:
    body = "00000019900101001"  # no such region: only the check character and the date matter
    assert parse_id_number(body + check_character(body), today=TODAY).value.startswith("000000")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (110105194912310020, "id_stored_as_number"),
        (1.10105194912310e17, "id_stored_as_number"),
        ("1.10105E+17", "id_scientific_notation"),
        ("1.10105e+17", "id_scientific_notation"),
        ("", "missing"),
        (None, "missing"),
        ("11010519491231002", "id_shape"),
        ("11010519491231002XX", "id_shape"),
        ("1101051949123100XX", "id_shape"),
        ("11010519491231002Y", "id_shape"),
        ("110105194912310021", "id_check_digit"),
    ],
)
def test_bad_id_numbers(raw: object, reason: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        parse_id_number(raw, today=TODAY)
    assert info.value.reason == reason


@pytest.mark.parametrize("birth", ["19990230", "20230229", "19991301", "19990000", "18991231",
                                   "20250602", "21000101", "19000229"])  # 1900: not a leap year
def test_impossible_or_future_birth_dates(birth: str) -> None:
    body = f"110105{birth}001"
    with pytest.raises(InvalidRecord) as info:
        parse_id_number(body + check_character(body), today=TODAY)
    assert info.value.reason == "id_birth_date"


@pytest.mark.parametrize("birth", ["20000229", "19000101", "19960229"])  # 2000: a leap year
def test_leap_days_and_the_first_year_are_accepted(birth: str) -> None:
    body = f"110105{birth}001"
    assert f"{parse_id_number(body + check_character(body), today=TODAY).birth_date:%Y%m%d}" == birth


def test_birth_today_is_accepted() -> None:
    body = f"110105{TODAY:%Y%m%d}001"
    assert parse_id_number(body + check_character(body), today=TODAY).birth_date == TODAY


def test_errors_and_repr_do_not_leak_the_number() -> None:
    with pytest.raises(InvalidRecord) as info:
        parse_id_number("110105194912310021", today=TODAY)
    assert "110105194912310021" not in info.value.diagnostics()
    assert "11010519491231002X" not in repr(parse_id_number("11010519491231002X", today=TODAY))


_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY)


@given(region=st.from_regex(r"[0-9]{6}", fullmatch=True), birth=_dates,
       seq=st.integers(0, 999), position=st.integers(0, 16), delta=st.integers(1, 9))
def test_check_character_catches_every_single_digit_error(region: str, birth: dt.date, seq: int,
                                                          position: int, delta: int) -> None:
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    number = body + check_character(body)
    assert parse_id_number(number, today=TODAY).birth_date == birth
    wrong = list(number)
    wrong[position] = str((int(wrong[position]) + delta) % 10)
    with pytest.raises(InvalidRecord):
        parse_id_number("".join(wrong), today=TODAY)


@pytest.mark.parametrize(("raw", "expected"), [
    ("张三", "张三"), (" 李 ", "李"), ("欧阳修", "欧阳修"), ("阿依古丽·买买提", "阿依古丽·买买提"),
    ("阿依古丽•买买提", "阿依古丽·买买提"), ("阿依古丽.买买提", "阿依古丽·买买提"), ("Anna", "Anna"),
    ("王" * 30, "王" * 30), ("𠀋", "𠀋"),
])
def test_names_accepted(raw: str, expected: str) -> None:
    assert parse_name(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "missing"), (None, "missing"), ("   ", "missing"), ("王" * 31, "name_length"),
    ("张3", "name_characters"), ("·张三", "name_characters"), ("张三·", "name_characters"),
    ("=HYPERLINK()", "name_characters"), ("张 三", "name_characters"),
])
def test_names_rejected(raw: object, reason: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        parse_name(raw)
    assert info.value.reason == reason and info.value.field == "name"


@pytest.mark.parametrize(("raw", "expected"), [
    ("13800138000", "13800138000"), ("+86 138 0013 8000", "13800138000"), ("86-138-0013-8000", "13800138000"),
    ("１３８００１３８０００", "13800138000"), (13800138000, "13800138000"), ("", None), (None, None),
])
def test_phones_accepted(raw: object, expected: str | None) -> None:
    assert parse_phone(raw) == expected


@pytest.mark.parametrize("raw", ["1234567890", "12800138000", "138001380001", "010-12345678", "1.38E+10",
                                 1.38e10])
def test_phones_rejected(raw: object) -> None:
    with pytest.raises(InvalidRecord) as info:
        parse_phone(raw)
    assert info.value.reason == "phone_shape"



def _other_digits(text: str, zero: int) -> str:
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


@pytest.mark.parametrize("zero", [0x660, 0x6F0, 0x966, 0x1D7CE])  # Arabic-Indic, Persian, Devanagari, math
def test_non_ascii_digits_never_pass_as_they_are(zero: int) -> None:
    """Regression: \\d matched other scripts' digits (NFKC keeps most of them), so a valid number
    written in them passed and got a blind index unequal to the ASCII number's: a duplicate member.
    Digits NFKC folds to ASCII (mathematical digits, like full-width ones) are read as ASCII."""
    for raw in (_other_digits(VALID[0], zero), VALID[1][:10] + _other_digits(VALID[1][10:], zero)):
        try:
            assert parse_id_number(raw, today=TODAY).value in VALID
        except InvalidRecord as exc:
            assert exc.reason == "id_shape"
    for raw in ("138" + _other_digits("00138000", zero), _other_digits("13800138000", zero)):
        try:
            assert parse_phone(raw) == "13800138000"
        except InvalidRecord as exc:
            assert exc.reason == "phone_shape"
