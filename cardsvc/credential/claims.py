"""The claims of a card credential and their CWT (RFC 8392) encoding.

Standard claims: ``iss`` (1), ``exp`` (4), ``iat`` (6), ``cti`` (7, the card number as ASCII).
Our own claims sit under ONE private-use key (RFC 8392 §9.1: integers below -65536), as an array
``[version, profile, key_version, categories?]`` — a private key costs 5 bytes, so four of them
would not fit in 128 bytes. No personal data: no name, ID number or phone, ever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from cardsvc.errors import MalformedCredential

CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_IAT = 6
CLAIM_CTI = 7
CLAIM_CARDSVC = -65537  # private use: [version, profile, key_version, categories?]
CREDENTIAL_VERSION = 1
_MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z
_CARD_NUMBER = re.compile(r"[0-9]{1,16}")
_CODE = re.compile(r"[\x21-\x7e]{1,32}")  # printable ASCII, no spaces


@dataclass(frozen=True, slots=True)
class CredentialClaims:
    """What a credential says. Times are aware datetimes, whole seconds on the wire."""

    issuer: str
    card_number: str
    issued_at: datetime
    expires_at: datetime
    profile: str
    key_version: int
    categories: tuple[str, ...] = ()
    version: int = CREDENTIAL_VERSION

    def __post_init__(self) -> None:
        if not (_CARD_NUMBER.fullmatch(self.card_number) and _CODE.fullmatch(self.issuer)
                and _CODE.fullmatch(self.profile)):
            _bad("card number must be 1-16 digits; issuer and profile short printable ASCII codes")
        for category in self.categories:
            if not _CODE.fullmatch(category):
                _bad("category codes must be short printable ASCII codes")
        if not (0 <= self.key_version <= 0xFFFF and 1 <= self.version <= 0xFF):
            _bad("key version or credential version out of range")
        if self.issued_at.tzinfo is None or self.expires_at.tzinfo is None:
            _bad("issued_at and expires_at must be timezone-aware")
        if self.expires_at <= self.issued_at:
            _bad("expires_at must be after issued_at")

    def to_cbor_map(self) -> dict[int, Any]:
        private: list[Any] = [self.version, self.profile, self.key_version]
        if self.categories:
            private.append(list(self.categories))
        return {
            CLAIM_ISS: self.issuer,
            CLAIM_CTI: self.card_number.encode("ascii"),
            CLAIM_IAT: _seconds(self.issued_at),
            CLAIM_EXP: _seconds(self.expires_at),
            CLAIM_CARDSVC: private,
        }


def claims_from_map(claims: object) -> CredentialClaims:
    """Build claims from a decoded CWT claims map; anything off-form → ``MalformedCredential``."""
    if type(claims) is not dict or len(claims) != 5:
        _bad("CWT claims must be exactly iss, cti, iat, exp and the cardsvc claim")
    get = claims.get
    issuer, cti, iat, exp = get(CLAIM_ISS), get(CLAIM_CTI), get(CLAIM_IAT), get(CLAIM_EXP)
    if not (type(issuer) is str and type(cti) is bytes and cti.isdigit()
            and type(iat) is int and type(exp) is int and 0 <= iat <= _MAX_TIME
            and 0 <= exp <= _MAX_TIME):
        _bad("iss, cti, iat or exp missing or of the wrong type")
    profile, key_version, categories = _private_fields(get(CLAIM_CARDSVC))
    return CredentialClaims(
        issuer, cti.decode("ascii"), datetime.fromtimestamp(iat, UTC),
        datetime.fromtimestamp(exp, UTC), profile, key_version, categories,
    )


def _private_fields(private: object) -> tuple[str, int, tuple[str, ...]]:
    if type(private) is not list or not 3 <= len(private) <= 4:
        _bad("cardsvc claim must be [version, profile, key_version, categories?]")
    if private[0] != CREDENTIAL_VERSION or type(private[0]) is not int:
        _bad(f"unsupported credential version {private[0]!r}")
    profile, key_version = private[1], private[2]
    if type(profile) is not str or type(key_version) is not int:
        _bad("cardsvc claim fields of the wrong type")
    if len(private) == 3:
        return profile, key_version, ()
    categories = private[3]
    if type(categories) is not list or not categories or not all(type(c) is str for c in categories):
        _bad("categories must be a non-empty list of text codes (omit an empty one)")
    return profile, key_version, tuple(categories)


def _seconds(moment: datetime) -> int:
    seconds = int(moment.timestamp())
    if not 0 <= seconds <= _MAX_TIME:
        _bad("time outside 1970-9999")
    return seconds


def _bad(message: str) -> NoReturn:
    raise MalformedCredential(message, reason="claims")
