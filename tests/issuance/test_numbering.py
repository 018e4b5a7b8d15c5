"""Card numbers: Luhn check digit, scheme limits, typed numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.errors import InvalidRecord
from cardsvc.issuance.numbering import NumberScheme, check_card_number, luhn_digit, luhn_valid


def test_luhn_known_answers() -> None:
    # ISO/IEC 7812-1 Annex B worked example and the classic 79927398713 (Wikipedia "Luhn algorithm")
    assert luhn_digit("7992739871") == "3"
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert luhn_valid("4111111111111111")  # the well-known Visa test number


def test_scheme_formats_prefix_year_sequence_check() -> None:
    scheme = NumberScheme("31", 2025)
    assert scheme.format(42) == "3125" + "0000042" + luhn_digit("31250000042")
    assert len(scheme.format(scheme.capacity)) == 12 and scheme.capacity == 9_999_999
    assert len(NumberScheme("3101", 2025, 16).format(1)) == 16
    with pytest.raises(InvalidRecord):
        scheme.format(0)
    with pytest.raises(InvalidRecord):
        scheme.format(scheme.capacity + 1)
    for bad in (("3a", 2025, 12), ("", 2025, 12), ("31", 1999, 12), ("310101", 2025, 12), ("31", 2025, 17)):
        with pytest.raises(InvalidRecord):
            NumberScheme(*bad)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=9_999_999), st.integers(min_value=0, max_value=11),
       st.integers(min_value=1, max_value=9))
def test_every_single_digit_typo_is_caught(sequence: int, position: int, delta: int) -> None:
    number = NumberScheme("31", 2025).format(sequence)
    typo = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
    assert check_card_number(number) == number
    with pytest.raises(InvalidRecord):
        check_card_number(typo)
