"""PII at rest: AES-256-GCM field encryption with row-bound AAD, and an HMAC-SHA256 blind index.

A sealed field is ``version (4 B, big-endian) ‖ nonce (12 B) ‖ ciphertext ‖ tag (16 B)``. The AAD
binds the ciphertext to its member (the public id) and its field, so a ciphertext copied onto another
row or into another column fails to open. The blind index is HMAC-SHA256 under a separate key over
``field ‖ 0x00 ‖ value``: equal values collide (lookups, de-duplication), nothing else can be learned
without the index key. Keys come from the key store; this module only receives bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Mapping
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cardsvc.errors import CryptoError, PiiIntegrityError

DATA_KEY_NAME = "pii/data"
INDEX_KEY_NAME = "pii/index"
KEY_SIZE = 32
_HEADER = struct.Struct(">I")
_NONCE_SIZE = 12
_AAD_PREFIX = b"cardsvc/pii/v1\x00"


class PiiCipher:
    """Seal, open and index personal fields with keys handed in by the caller."""

    def __init__(self, data_keys: Mapping[int, bytes], current_version: int, index_key: bytes) -> None:
        if current_version not in data_keys:
            raise CryptoError(f"no data key for the current version {current_version}")
        if any(len(k) != KEY_SIZE for k in data_keys.values()) or len(index_key) != KEY_SIZE:
            raise CryptoError(f"PII keys must be {KEY_SIZE} bytes")
        if any(hmac.compare_digest(k, index_key) for k in data_keys.values()):
            raise CryptoError("the blind-index key must differ from every data key")
        self._aead = MappingProxyType({v: AESGCM(k) for v, k in data_keys.items()})
        self._index_key = bytes(index_key)
        self.current_version = current_version

    def __repr__(self) -> str:
        return f"PiiCipher(versions={sorted(self._aead)}, current={self.current_version})"

    def seal(self, value: str, *, record: str, field: str) -> bytes:
        """Encrypt ``value`` for ``field`` of member ``record`` under the current data key."""
        nonce = os.urandom(_NONCE_SIZE)
        aead = self._aead[self.current_version]
        body = aead.encrypt(nonce, value.encode(), _aad(record, field))
        return _HEADER.pack(self.current_version) + nonce + body

    def open(self, sealed: bytes, *, record: str, field: str) -> str:
        """Decrypt; raises :class:`PiiIntegrityError` if the ciphertext is not this row's field."""
        version = key_version(sealed)
        aead = self._aead.get(version)
        if aead is None:
            raise PiiIntegrityError(f"{field}: no data key version {version} in the key store")
        nonce = sealed[_HEADER.size : _HEADER.size + _NONCE_SIZE]
        try:
            plain = aead.decrypt(nonce, sealed[_HEADER.size + _NONCE_SIZE :], _aad(record, field))
        except InvalidTag:
            raise PiiIntegrityError(f"{field}: ciphertext does not belong to this record") from None
        return plain.decode()

    def reseal(self, sealed: bytes, *, record: str, field: str) -> bytes:
        """Re-encrypt under the current data key (``members rekey``)."""
        return self.seal(self.open(sealed, record=record, field=field), record=record, field=field)

    def blind_index(self, value: str, *, field: str) -> bytes:
        """The keyed lookup index of ``value`` (32 bytes)."""
        return hmac.new(self._index_key, field.encode() + b"\x00" + value.encode(), hashlib.sha256).digest()


def key_version(sealed: bytes) -> int:
    """The data-key version a sealed field was written with."""
    if len(sealed) < _HEADER.size + _NONCE_SIZE + 16:
        raise PiiIntegrityError("sealed field is truncated")
    return int(_HEADER.unpack_from(sealed)[0])


def _aad(record: str, field: str) -> bytes:
    return _AAD_PREFIX + field.encode() + b"\x00" + record.encode()
