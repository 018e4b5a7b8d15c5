"""Parsing of the personal fields of a member: ID number (GB 11643-1999), name and phone.

Parse, don't validate: each ``parse_*`` takes what a clerk's file holds and returns a normalised
value or raises :class:`~cardsvc.errors.InvalidRecord` naming the field and a stable reason code.
Messages never repeat the value itself.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from cardsvc.errors import InvalidRecord

# GB 11643-1999 §5 / ISO 7064 MOD 11-2: weights 2^(17-i) mod 11 and the check-character table.
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"
# ASCII digits only: Python's \d also matches Arabic-Indic, Devanagari … digits, which NFKC keeps,
# and int() reads — such a number would pass the check and get a blind index of its own.
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_SCIENTIFIC = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?E[+-]?[0-9]+$")
_PHONE = re.compile(r"1[3-9][0-9]{9}")
_NAME_SEPARATORS = "·•‧∙・･."
_NAME_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003134fA-Za-z·]")
MAX_NAME_LENGTH = 30


class Gender(StrEnum):
    female = "female"
    male = "male"


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A checked 18-character ID number with what it encodes."""

    value: str
    birth_date: dt.date
    gender: Gender

    def __repr__(self) -> str:  # never leak the number through a repr in a log or traceback
        return "IdNumber(<redacted>)"


def check_character(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalise_text(raw: str) -> str:
    """NFKC (full-width digits and letters from Excel) and trimmed, inner spaces kept."""
    return unicodedata.normalize("NFKC", raw).strip()


def parse_id_number(raw: object, *, today: dt.date) -> IdNumber:
    """Check an ID number: shape, MOD 11-2 check character, a real birth date not in the future.

    Accepts residence permits (81/82/83 prefixes) and foreigners' permanent-residence IDs (9…):
    region codes are not checked, they change and abolished ones stay valid.
    """
    if isinstance(raw, (int, float)):
        raise InvalidRecord("stored as a number: Excel keeps 15 digits, format the column as text",
                            field="id_number", reason="id_stored_as_number")
    text = re.sub(r"\s", "", normalise_text("" if raw is None else str(raw))).upper()
    if not text:
        raise InvalidRecord("missing", field="id_number", reason="missing")
    if _SCIENTIFIC.match(text):
        raise InvalidRecord("in scientific notation: the number was corrupted by Excel",
                            field="id_number", reason="id_scientific_notation")
    if not _ID_SHAPE.fullmatch(text):
        raise InvalidRecord("must be 17 digits and a digit or X", field="id_number", reason="id_shape")
    if check_character(text[:17]) != text[17]:
        raise InvalidRecord("check character does not match", field="id_number", reason="id_check_digit")
    birth = _birth_date(text[6:14], today=today)
    gender = Gender.male if int(text[16]) % 2 else Gender.female
    return IdNumber(value=text, birth_date=birth, gender=gender)


def _birth_date(digits: str, *, today: dt.date) -> dt.date:
    try:
        birth = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise InvalidRecord("birth date is not a real date", field="id_number",
                            reason="id_birth_date") from None
    if birth > today or birth.year < 1900:
        raise InvalidRecord("birth date is in the future or before 1900", field="id_number",
                            reason="id_birth_date")
    return birth


def parse_name(raw: object) -> str:
    """1–30 characters of Han or Latin script; ``·`` (and its look-alikes) for minority names."""
    text = normalise_text("" if raw is None else str(raw))
    for sep in _NAME_SEPARATORS:
        text = text.replace(sep, "·")
    if not text:
        raise InvalidRecord("missing", field="name", reason="missing")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidRecord(f"longer than {MAX_NAME_LENGTH} characters", field="name", reason="name_length")
    if not all(_NAME_CHAR.fullmatch(c) for c in text) or text[0] == "·" or text[-1] == "·":
        raise InvalidRecord("contains characters a name cannot have", field="name", reason="name_characters")
    return text


def parse_phone(raw: object) -> str | None:
    """A mainland mobile number (11 digits, 1[3-9]…); ``+86``/``86`` prefix, spaces and dashes dropped."""
    if isinstance(raw, float):
        raise InvalidRecord("stored as a decimal number", field="phone", reason="phone_shape")
    text = re.sub(r"[\s\-()]", "", normalise_text("" if raw is None else str(raw)))
    if not text:
        return None
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not _PHONE.fullmatch(text):
        raise InvalidRecord("not a mainland mobile number", field="phone", reason="phone_shape")
    return text
