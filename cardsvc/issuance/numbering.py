"""Card numbers: issuer prefix + year + sequence + Luhn check digit, at most 16 digits.

``31`` + ``25`` + ``0000042`` + check = ``312500000426``: the sequence fills the number up to the
batch's length (default :data:`DEFAULT_LENGTH` = 12). The credential's ``cti`` is the number in
ASCII and every byte counts in a 128-byte credential, so the year is two digits and 12 digits are
the default (10 million cards per prefix and year); up to 16 are allowed.
The Luhn digit (ISO/IEC 7812-1 Annex B) catches every single-digit typo and most transpositions
when a clerk types a number from a card.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardsvc.errors import InvalidRecord

NUMBER_LENGTH = 16
DEFAULT_LENGTH = 12
YEAR_DIGITS = 2
MIN_SEQUENCE_DIGITS = 5


def luhn_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits``."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_digit(number[:-1]) == number[-1]


@dataclass(frozen=True, slots=True)
class NumberScheme:
    """One issuer prefix and year; :meth:`format` turns a sequence number into a card number."""

    prefix: str
    year: int
    length: int = DEFAULT_LENGTH

    def __post_init__(self) -> None:
        if not (self.prefix.isdigit() and self.prefix.isascii() and 1 <= len(self.prefix) <= 6):
            raise InvalidRecord("issuer prefix must be 1-6 digits", field="prefix")
        if not 2000 <= self.year <= 2099:
            raise InvalidRecord("year must be 2000-2099", field="year")
        if not self.length <= NUMBER_LENGTH or self.sequence_digits < MIN_SEQUENCE_DIGITS:
            raise InvalidRecord(f"numbers of {self.length} digits leave fewer than {MIN_SEQUENCE_DIGITS} "
                                f"sequence digits after prefix {self.prefix}", field="length")

    @property
    def sequence_digits(self) -> int:
        return self.length - len(self.prefix) - YEAR_DIGITS - 1

    @property
    def capacity(self) -> int:
        return int(10**self.sequence_digits) - 1

    def format(self, sequence: int) -> str:
        if not 1 <= sequence <= self.capacity:
            raise InvalidRecord(f"sequence {sequence} outside 1..{self.capacity}", field="sequence")
        body = f"{self.prefix}{self.year % 100:02d}{sequence:0{self.sequence_digits}d}"
        return body + luhn_digit(body)


def check_card_number(text: str) -> str:
    """A card number typed by a clerk: digits only (spaces allowed), Luhn-valid."""
    number = text.replace(" ", "")
    if not (number.isascii() and luhn_valid(number) and len(number) <= NUMBER_LENGTH):
        raise InvalidRecord("not a card number (digits with a valid check digit)", field="card_number")
    return number
