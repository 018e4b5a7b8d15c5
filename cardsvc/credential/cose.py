"""COSE_Sign1 (RFC 9052 §4.2) encode/decode and the two signature algorithms we accept.

Only what a card credential and a trust bundle need: tagged COSE_Sign1, protected header with
``alg`` (1) and ``kid`` (4), an attached payload, EdDSA (Ed25519) or ES256 with raw ``r‖s``
signatures. Anything else — unknown ``crit`` parameters, detached payloads, untagged input,
trailing bytes — is refused with a typed error.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple, NoReturn

from cbor2 import CBORTag

from cardsvc.credential._cbor import bstr_header, decode_exact, encode
from cardsvc.errors import MalformedCredential

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_CRIT = 2
HEADER_KID = 4
_SIG1_CONTEXT = b"\x84\x6aSignature1"  # array(4), text(10) "Signature1"
_EMPTY_AAD = b"\x40"


class Algorithm(IntEnum):
    """COSE algorithm identifiers (IANA COSE Algorithms registry)."""

    eddsa = -8
    es256 = -7

    @property
    def label(self) -> str:
        return {Algorithm.eddsa: "EdDSA", Algorithm.es256: "ES256"}[self]

    @classmethod
    def parse(cls, value: str | int) -> Algorithm:
        """From a label (``EdDSA``/``ES256``, any case) or a COSE number."""
        for alg in cls:
            if value in (alg.value, alg.label) or str(value).lower() == alg.label.lower():
                return alg
        raise ValueError(f"unsupported algorithm {value!r} (EdDSA or ES256)")


class Sign1(NamedTuple):
    """A decoded COSE_Sign1: the protected header bytes exactly as received, and its fields.

    An immutable record (a NamedTuple rather than a frozen dataclass: it is built on every
    verification, and a frozen dataclass's ``__init__`` costs ~0.1 µs per field).
    """

    protected: bytes
    alg: int
    kid: bytes
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        return sig_structure(self.protected, self.payload)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """``Sig_structure`` for COSE_Sign1 with empty external AAD (RFC 9052 §4.4)."""
    head_p = _SHORT[len(protected)] if len(protected) < 256 else bstr_header(len(protected))
    head_c = _SHORT[len(payload)] if len(payload) < 256 else bstr_header(len(payload))
    return b"".join((_SIG1_CONTEXT, head_p, protected, _EMPTY_AAD, head_c, payload))


_SHORT = tuple(bstr_header(n) for n in range(256))  # byte-string headers for lengths < 256


def protected_header(alg: Algorithm, kid: bytes) -> bytes:
    return encode({HEADER_ALG: int(alg), HEADER_KID: kid})


def encode_sign1(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    """Tagged COSE_Sign1 with an empty unprotected header."""
    return encode(CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


def decode_sign1(raw: bytes, *, max_size: int) -> Sign1:
    """Parse tagged COSE_Sign1 bytes; raises ``MalformedCredential`` with a reason code."""
    if len(raw) > max_size:
        _fail("too_large")
    return _decode_canonical(raw) or _decode_general(raw)


# Our own credentials: D2 84 | 46 A2 01 <alg> 04 41 <kid> | A0 | 58 <n> <payload> | 58 40 <sig>
_CANONICAL_ALG = {0x27: -8, 0x26: -7}
_CANONICAL_MIN = 12 + 24 + 66  # header bytes, the shortest 58-prefixed payload, the signature


def _decode_canonical(raw: bytes) -> Sign1 | None:
    """Slice the exact layout we emit without a CBOR decoder (the verifier's hot path).

    Only input byte-identical to that canonical layout takes this path — every length byte is
    checked — so it accepts exactly what the general decoder would; anything else returns None.
    Input too short for that layout returns None before any index is read.
    """
    if len(raw) < _CANONICAL_MIN:
        return None
    if raw[:5] != b"\xd2\x84\x46\xa2\x01" or raw[6:8] != b"\x04\x41" or raw[9:11] != b"\xa0\x58":
        return None
    alg = _CANONICAL_ALG.get(raw[5])
    end = 12 + raw[11]
    if alg is None or raw[11] < 24 or raw[end : end + 2] != b"\x58\x40" or len(raw) != end + 66:
        return None
    return Sign1(raw[3:9], alg, raw[8:9], raw[12:end], raw[end + 2 :])


def _decode_general(raw: bytes) -> Sign1:
    item = decode_exact(raw, _fail)
    if not isinstance(item, CBORTag) or item.tag != COSE_SIGN1_TAG:
        _fail("cose_structure")
    fields = item.value
    if not isinstance(fields, list) or len(fields) != 4:
        _fail("cose_structure")
    protected, unprotected, payload, signature = fields
    if not (isinstance(protected, bytes) and isinstance(unprotected, dict)
            and isinstance(payload, bytes) and isinstance(signature, bytes)):
        _fail("cose_structure")
    alg, kid = _header_fields(protected, unprotected)
    return Sign1(protected, alg, kid, payload, signature)


def _header_fields(protected: bytes, unprotected: dict[Any, Any]) -> tuple[int, bytes]:
    header = decode_exact(protected, _fail) if protected else {}
    if not isinstance(header, dict) or HEADER_CRIT in header or HEADER_CRIT in unprotected:
        _fail("cose_structure")
    alg = header.get(HEADER_ALG)
    kid = header.get(HEADER_KID, unprotected.get(HEADER_KID))
    if type(alg) is not int or HEADER_ALG in unprotected:
        _fail("cose_structure")
    if not isinstance(kid, bytes) or not kid:
        _fail("cose_structure")
    return alg, kid


def _fail(reason: str) -> NoReturn:
    raise MalformedCredential(f"not a valid COSE_Sign1 credential ({reason})", reason=reason)
