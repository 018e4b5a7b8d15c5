"""Issuer keys as verifiers see them, the ``Signer`` protocol, and public-key codecs.

A key id (``kid``) is a lookup hint; what a verifier trusts is the key record that a signed
trust bundle (or the local key store) binds to it: algorithm, public key, state and window.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from cardsvc.credential.cose import Algorithm
from cardsvc.errors import CredentialVerificationError, KeyStoreError

KID_SIZE = 1  # a hint only; every byte counts in a 128-byte credential (store keeps kids unique)
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class KeyState(StrEnum):
    """Issuer key life cycle: active (signs) → retired (verify-only) → revoked (nothing verifies)."""

    active = "active"
    retired = "retired"
    revoked = "revoked"


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """A public signing key with its state and window.

    ``not_before``/``not_after`` bound when the key may *sign*: a credential whose ``iat`` lies
    outside them is refused; ``not_after`` is the retirement cut-off (``None`` = open-ended).
    """

    kid: bytes
    alg: Algorithm
    public_key: bytes
    state: KeyState
    not_before: datetime
    not_after: datetime | None = None

    def may_sign_at(self, moment: datetime) -> bool:
        if self.state is not KeyState.active or moment < self.not_before:
            return False
        return self.not_after is None or moment < self.not_after


@runtime_checkable
class Signer(Protocol):
    """Anything that signs with one key: a software key, a PKCS#11 key, a test double."""

    @property
    def kid(self) -> bytes: ...

    @property
    def alg(self) -> Algorithm: ...

    def sign(self, data: bytes) -> bytes:
        """The COSE signature over ``data`` (Ed25519: 64 bytes; ES256: raw r‖s, 64 bytes)."""
        ...


@dataclass(frozen=True, slots=True)
class SoftwareSigner:
    """A signer over a private key held in process memory (file key store, tests)."""

    kid: bytes
    alg: Algorithm
    private_key: PrivateKey

    @classmethod
    def generate(cls, alg: Algorithm = Algorithm.eddsa, kid: bytes | None = None) -> SoftwareSigner:
        return cls(kid or new_kid(), alg, generate_private_key(alg))

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(data)
        der = self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        return raw_ecdsa_signature(der)

    def public_key_bytes(self) -> bytes:
        return public_bytes(self.private_key.public_key())


def new_kid() -> bytes:
    return os.urandom(KID_SIZE)


def generate_private_key(alg: Algorithm) -> PrivateKey:
    if alg is Algorithm.eddsa:
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def private_bytes(key: PrivateKey) -> bytes:
    """Raw private key: the 32-byte Ed25519 seed or the 32-byte P-256 scalar."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.private_bytes_raw()
    return key.private_numbers().private_value.to_bytes(32, "big")


def load_private_key(alg: Algorithm, raw: bytes) -> PrivateKey:
    try:
        if alg is Algorithm.eddsa:
            return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError as exc:
        raise KeyStoreError("stored private key is corrupt") from exc


def public_bytes(key: PublicKey) -> bytes:
    """Raw Ed25519 (32 B) or uncompressed SEC1 P-256 point (65 B)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes_raw()
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def load_public_key(alg: Algorithm, raw: bytes) -> PublicKey:
    """Parse a raw public key for ``alg``; raises ``ValueError`` on a malformed key."""
    if alg is Algorithm.eddsa:
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    if len(raw) != 65:
        raise ValueError("P-256 public key must be a 65-byte uncompressed point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def raw_ecdsa_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


SignatureCheck = Callable[[bytes, bytes], None]
"""``check(signature, message)``: returns, or raises ``InvalidSignature``. Built once per key."""


def signature_check(alg: Algorithm, key: PublicKey) -> SignatureCheck:
    """A checker for COSE signatures under ``key`` (bound once, so the hot path needs no
    ``isinstance`` on cryptography's ABCs, which costs more than the rest of a check).

    Ed25519 verifies through libsodium (``crypto_sign_open``: ~53 µs here against OpenSSL's
    ~104 µs); it accepts a subset of what OpenSSL accepts (it also refuses small-order and
    non-canonical public keys and small-order ``R``), see docs/credentials.md.
    """
    if alg is Algorithm.eddsa:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ValueError("EdDSA needs an Ed25519 public key")
        return _ed25519_check(key.public_bytes_raw())
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("ES256 needs a P-256 public key")
    return _es256_check(key)


def _ed25519_check(public_key: bytes) -> SignatureCheck:
    verify = VerifyKey(public_key).verify  # the raw 32 bytes, bound once

    def check(signature: bytes, message: bytes) -> None:
        # VerifyKey refuses a signature that is not 64 bytes (so it can never slide into the
        # message of crypto_sign_open's signature‖message input); every libsodium failure —
        # BadSignatureError, its ValueError/TypeError — is the one InvalidSignature.
        try:
            verify(message, signature)
        except (CryptoError, ValueError, TypeError):
            raise InvalidSignature from None

    return check


def _es256_check(key: ec.EllipticCurvePublicKey) -> SignatureCheck:
    algorithm = ec.ECDSA(hashes.SHA256())

    def check(signature: bytes, message: bytes) -> None:
        if len(signature) != 64:
            raise InvalidSignature
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                   int.from_bytes(signature[32:], "big"))
        key.verify(der, message, algorithm)

    return check


def verify_signature(check: SignatureCheck, signature: bytes, message: bytes) -> None:
    """Run a signature check; raises ``CredentialVerificationError(reason="signature")``."""
    try:
        check(signature, message)
    except InvalidSignature:
        raise CredentialVerificationError("signature does not verify", reason="signature") from None


# --- CBOR form of a key record (trust bundle and key store catalogue) ---------------------------

_KID, _ALG, _PUBLIC, _STATE, _NOT_BEFORE, _NOT_AFTER = 1, 2, 3, 4, 5, 6


def key_to_map(key: IssuerKey) -> dict[int, object]:
    return {
        _KID: key.kid, _ALG: int(key.alg), _PUBLIC: key.public_key, _STATE: str(key.state),
        _NOT_BEFORE: int(key.not_before.timestamp()),
        _NOT_AFTER: None if key.not_after is None else int(key.not_after.timestamp()),
    }


def key_from_map(item: object) -> IssuerKey:
    """Parse a key record; raises ``ValueError`` on anything off-form (callers wrap it)."""
    if not isinstance(item, dict) or set(item) != {_KID, _ALG, _PUBLIC, _STATE, _NOT_BEFORE, _NOT_AFTER}:
        raise ValueError("key record must have exactly kid, alg, public, state, not_before, not_after")
    kid, alg, public, state = item[_KID], item[_ALG], item[_PUBLIC], item[_STATE]
    if not (isinstance(kid, bytes) and kid and isinstance(public, bytes) and isinstance(state, str)):
        raise ValueError("key record fields of the wrong type")
    algorithm = Algorithm(alg) if type(alg) is int else Algorithm.parse(str(alg))
    load_public_key(algorithm, public)
    not_after = item[_NOT_AFTER]
    return IssuerKey(kid, algorithm, public, KeyState(state), _time(item[_NOT_BEFORE]),
                     None if not_after is None else _time(not_after))


def _time(value: object) -> datetime:
    if type(value) is not int or not 0 <= value <= 253402300799:
        raise ValueError("time must be an integer NumericDate")
    return datetime.fromtimestamp(value, UTC)


# --- COSE_Key (RFC 9052 §7, RFC 9053 §7) for trust anchors --------------------------------------

_KTY, _KEY_KID, _KEY_ALG, _CRV, _X, _Y = 1, 2, 3, -1, -2, -3
_OKP, _EC2, _ED25519, _P256 = 1, 2, 6, 1


def cose_key_map(kid: bytes, alg: Algorithm, public_key: bytes) -> dict[int, object]:
    if alg is Algorithm.eddsa:
        return {_KTY: _OKP, _KEY_KID: kid, _KEY_ALG: int(alg), _CRV: _ED25519, _X: public_key}
    return {_KTY: _EC2, _KEY_KID: kid, _KEY_ALG: int(alg), _CRV: _P256,
            _X: public_key[1:33], _Y: public_key[33:65]}


def cose_key_fields(item: object) -> tuple[bytes, Algorithm, bytes]:
    """(kid, alg, raw public key) of an Ed25519 or P-256 COSE_Key; ``ValueError`` otherwise."""
    if not isinstance(item, dict):
        raise ValueError("COSE_Key must be a map")
    kid, alg, x = item.get(_KEY_KID), item.get(_KEY_ALG), item.get(_X)
    if not (isinstance(kid, bytes) and kid and type(alg) is int and isinstance(x, bytes)):
        raise ValueError("COSE_Key needs kid, alg and x")
    algorithm = Algorithm(alg)
    if algorithm is Algorithm.eddsa and (item.get(_KTY), item.get(_CRV)) == (_OKP, _ED25519):
        public = x
    elif (item.get(_KTY), item.get(_CRV)) == (_EC2, _P256) and isinstance(item.get(_Y), bytes):
        public = b"\x04" + x + item[_Y]
    else:
        raise ValueError("unsupported key type or curve")
    load_public_key(algorithm, public)
    return kid, algorithm, public
