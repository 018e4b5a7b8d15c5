"""The trust bundle: issuer keys + revoked card numbers + sequence + validity, signed as COSE_Sign1.

Payload (CBOR map, integer keys)::

    1: format (1)          2: sequence (uint)      3: issued_at      4: expires_at
    5: issuer code or null  6: [key record …]       7: revoked card numbers (packed)

Revoked card numbers are packed as sorted, unique big-endian 64-bit words: the digits read as
hexadecimal after padding to 16 nibbles with ``F`` (EMV "compressed numeric"), so leading zeros
survive ("0123" and "123" differ) and every card number maps to exactly one word. 20,000 revoked
cards take 160 KB; lookup is a binary search over an ``array('Q')`` — O(log n), no per-entry
objects.
"""

from __future__ import annotations

import array
import itertools
import sys
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from cardsvc.credential._cbor import decode_exact, encode
from cardsvc.credential.cose import (
    Algorithm,
    decode_sign1,
    encode_sign1,
    protected_header,
    sig_structure,
)
from cardsvc.credential.keys import (
    IssuerKey,
    SignatureCheck,
    Signer,
    cose_key_fields,
    cose_key_map,
    key_from_map,
    key_to_map,
    load_public_key,
    signature_check,
    verify_signature,
)
from cardsvc.errors import BundleError, CredentialVerificationError, MalformedCredential

FORMAT = 1
MAX_BUNDLE_SIZE = 16 * 1024 * 1024
_FORMAT, _SEQUENCE, _ISSUED, _EXPIRES, _ISSUER, _KEYS, _REVOKED = 1, 2, 3, 4, 5, 6, 7
_WORD = 8


def card_number_word(card_number: str) -> int:
    """The 64-bit sort key of a 1-16-digit card number (digits as hex, padded with F)."""
    if not (card_number.isdigit() and card_number.isascii() and 1 <= len(card_number) <= 16):
        raise ValueError(f"not a 1-16 digit card number: {card_number!r}")
    return int(card_number.ljust(16, "F"), 16)


def build_trust_bundle(
    signer: Signer,
    issuer_keys: Sequence[IssuerKey],
    revoked_card_numbers: Iterable[str],
    sequence: int,
    issued_at: datetime,
    expires_at: datetime,
    *,
    issuer: str | None = None,
) -> bytes:
    """Sign a bundle. Raises ``BundleError`` for an empty key list or bad numbers/times."""
    if not issuer_keys or sequence < 0 or expires_at <= issued_at:
        raise BundleError("a bundle needs keys, a sequence >= 0 and expires_at after issued_at")
    try:
        words = sorted({card_number_word(n) for n in revoked_card_numbers})
    except ValueError as exc:
        raise BundleError(str(exc), reason="bundle_input") from exc
    packed = array.array("Q", words)
    if sys.byteorder == "little":
        packed.byteswap()
    payload = encode({
        _FORMAT: FORMAT, _SEQUENCE: sequence,
        _ISSUED: int(issued_at.timestamp()), _EXPIRES: int(expires_at.timestamp()),
        _ISSUER: issuer, _KEYS: [key_to_map(k) for k in issuer_keys], _REVOKED: packed.tobytes(),
    })
    protected = protected_header(signer.alg, signer.kid)
    return encode_sign1(protected, payload, signer.sign(sig_structure(protected, payload)))


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """The bundle key a verifier trusts, obtained out of band (``cardsvc trust anchor``)."""

    kid: bytes
    alg: Algorithm
    public_key: bytes

    @classmethod
    def from_key(cls, key: IssuerKey) -> TrustAnchor:
        return cls(key.kid, key.alg, key.public_key)

    def to_cose_key(self) -> bytes:
        """The anchor as a COSE_Key (RFC 9052 §7), readable by any COSE library."""
        return encode(cose_key_map(self.kid, self.alg, self.public_key))

    @classmethod
    def from_cose_key(cls, raw: bytes) -> TrustAnchor:
        try:
            kid, alg, public = cose_key_fields(decode_exact(raw, _malformed))
        except ValueError as exc:
            raise BundleError(f"trust anchor is not a usable COSE_Key: {exc}",
                              reason="anchor_invalid") from None
        return cls(kid, alg, public)


@dataclass(frozen=True, slots=True, eq=False)
class TrustBundle:
    """A bundle whose signature has been verified against a trust anchor."""

    sequence: int
    issued_at: datetime
    expires_at: datetime
    issuer: str | None
    keys: tuple[IssuerKey, ...]
    revoked: array.array[int]
    public_keys: dict[bytes, tuple[IssuerKey, SignatureCheck]]

    @classmethod
    def load(cls, raw: bytes, anchors: TrustAnchor | Sequence[TrustAnchor]) -> TrustBundle:
        """Verify the bundle signature, then parse; any failure → ``BundleError`` with a reason."""
        anchor_list = [anchors] if isinstance(anchors, TrustAnchor) else list(anchors)
        try:
            sign1 = decode_sign1(raw, max_size=MAX_BUNDLE_SIZE)
        except MalformedCredential as exc:
            raise BundleError(f"bundle is not a COSE_Sign1 document ({exc.reason})",
                              reason="bundle_malformed") from None
        _verify_bundle_signature(sign1.kid, sign1.alg, sign1.to_be_signed(), sign1.signature,
                                 anchor_list)
        return _parse_payload(decode_exact(sign1.payload, _malformed))

    def is_revoked(self, card_number: str) -> bool:
        """Binary search in the packed revocation list. Fails closed: a string that is not a
        1-16-digit card number cannot be shown absent from the list, so it counts as revoked."""
        try:
            word = card_number_word(card_number)
        except ValueError:
            return True
        index = bisect_left(self.revoked, word)
        return index < len(self.revoked) and self.revoked[index] == word

    def is_fresh(self, now: datetime) -> bool:
        return self.issued_at <= now < self.expires_at

    def key(self, kid: bytes) -> tuple[IssuerKey, SignatureCheck] | None:
        """The key record and its signature check for ``kid`` (a hint), or None."""
        return self.public_keys.get(kid)


def _verify_bundle_signature(kid: bytes, alg: int, message: bytes, signature: bytes,
                             anchors: list[TrustAnchor]) -> None:
    """Any anchor with this kid and algorithm may verify: one-byte kids collide, and a kid is a
    hint, so a colliding anchor earlier in the list must not hide the one that signed."""
    named = [anchor for anchor in anchors if anchor.kid == kid]
    if not named:
        raise BundleError(f"bundle signed by unknown key {kid.hex()}", reason="bundle_signature")
    pinned = [anchor for anchor in named if anchor.alg == alg]
    if not pinned:
        raise BundleError("bundle algorithm does not match the trust anchor",
                          reason="bundle_signature")
    if not any(_anchor_verifies(anchor, message, signature) for anchor in pinned):
        raise BundleError("bundle signature does not verify", reason="bundle_signature")


def _anchor_verifies(anchor: TrustAnchor, message: bytes, signature: bytes) -> bool:
    try:
        public = load_public_key(anchor.alg, anchor.public_key)
        verify_signature(signature_check(anchor.alg, public), signature, message)
    except (CredentialVerificationError, ValueError):
        return False
    return True


def _parse_payload(data: object) -> TrustBundle:
    if not isinstance(data, dict) or set(data) != {_FORMAT, _SEQUENCE, _ISSUED, _EXPIRES, _ISSUER,
                                                    _KEYS, _REVOKED}:
        _malformed("fields")
    if data[_FORMAT] != FORMAT:
        _malformed("format")
    try:
        keys = tuple(key_from_map(k) for k in _list(data[_KEYS]))
        public = {k.kid: (k, signature_check(k.alg, load_public_key(k.alg, k.public_key)))
                  for k in keys}
        issued, expires = _time(data[_ISSUED]), _time(data[_EXPIRES])
    except ValueError:
        _malformed("keys")
    sequence, issuer = data[_SEQUENCE], data[_ISSUER]
    if type(sequence) is not int or sequence < 0 or not (issuer is None or isinstance(issuer, str)):
        _malformed("fields")
    if len(public) != len(keys):
        _malformed("duplicate_kid")
    return TrustBundle(sequence, issued, expires, issuer, keys, _revocations(data[_REVOKED]), public)


def _revocations(packed: object) -> array.array[int]:
    if not isinstance(packed, bytes) or len(packed) % _WORD:
        _malformed("revoked")
    words = array.array("Q")
    words.frombytes(packed)
    if sys.byteorder == "little":
        words.byteswap()
    if any(a >= b for a, b in itertools.pairwise(words)):
        _malformed("revoked_order")
    return words


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def _time(value: object) -> datetime:
    if type(value) is not int or not 0 <= value <= 253402300799:
        raise ValueError("bad time")
    return datetime.fromtimestamp(value, UTC)


def _malformed(reason: str) -> NoReturn:
    raise BundleError(f"bundle payload is malformed ({reason})", reason="bundle_malformed")
