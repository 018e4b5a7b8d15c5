"""DES and Triple-DES (TDEA) block operations: ECB and CBC over whole 8-byte blocks.

Keys of 8 bytes are single DES, 16 bytes two-key TDES (K1 K2 K1), 24 bytes three-key TDES.
cryptography keeps TripleDES in ``hazmat.decrepit``; its two-key form warns, so every key is
expanded to 24 bytes here (``k + k[:8]`` for two keys, ``k * 3`` for single DES) before use.
Bytes in, bytes out; wrong sizes raise :class:`~cardsvc.errors.CryptoError`.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, modes

from cardsvc.errors import CryptoError

BLOCK = 8
ZERO_IV = bytes(BLOCK)
_KEY_SIZES = (8, 16, 24)


def expand_key(key: bytes) -> bytes:
    """The 24-byte EDE key for a single, two-key or three-key DES key."""
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise CryptoError(f"DES key must be one of {_KEY_SIZES} bytes, got {len(key)}")


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK:
        raise CryptoError(f"data must be a multiple of {BLOCK} bytes, got {len(data)}")


def _check_iv(iv: bytes) -> None:
    if len(iv) != BLOCK:
        raise CryptoError(f"IV must be {BLOCK} bytes, got {len(iv)}")


def _apply(key: bytes, mode: modes.ECB | modes.CBC, data: bytes, *, encrypt: bool) -> bytes:
    _check_blocks(data)
    cipher = Cipher(TripleDES(expand_key(key)), mode)
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


def ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """Encrypt whole blocks independently (card cryptograms are one block)."""
    return _apply(key, modes.ECB(), data, encrypt=True)  # noqa: S305 - block primitive for card protocols


def ecb_decrypt(key: bytes, data: bytes) -> bytes:
    return _apply(key, modes.ECB(), data, encrypt=False)  # noqa: S305 - block primitive for card protocols


def cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_iv(iv)
    return _apply(key, modes.CBC(iv), data, encrypt=True)


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_iv(iv)
    return _apply(key, modes.CBC(iv), data, encrypt=False)


class DesKey:
    """One DES/TDES key with its ECB contexts made once, for a card's or session's many short
    operations (making a context costs several µs, using one well under one). Results equal the
    module functions'. Not thread-safe (the contexts are mutable): one object per card or session.
    """

    __slots__ = ("_cipher", "_decrypt", "_encrypt")

    def __init__(self, key: bytes) -> None:
        self._cipher = Cipher(TripleDES(expand_key(key)), modes.ECB())  # noqa: S305 - block primitive
        self._encrypt = self._cipher.encryptor()
        self._decrypt: CipherContext | None = None  # made on first use (a MAC key never decrypts)

    def __repr__(self) -> str:
        return "DesKey(<key hidden>)"

    def ecb_encrypt(self, data: bytes) -> bytes:
        _check_blocks(data)
        return self._encrypt.update(data)

    def ecb_decrypt(self, data: bytes) -> bytes:
        _check_blocks(data)
        if self._decrypt is None:
            self._decrypt = self._cipher.decryptor()
        return self._decrypt.update(data)

    def cbc_last(self, iv: bytes, data: bytes) -> bytes:
        """The last block of the CBC encryption of ``data`` from ``iv`` (a MAC's chaining value)."""
        _check_iv(iv)
        _check_blocks(data)
        chained, encrypt = iv, self._encrypt.update
        for start in range(0, len(data), BLOCK):
            mixed = int.from_bytes(chained, "big") ^ int.from_bytes(data[start : start + BLOCK], "big")
            chained = encrypt(mixed.to_bytes(BLOCK, "big"))
        return chained
