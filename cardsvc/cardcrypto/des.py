"""DES and Triple-DES (TDEA) block operations: ECB and CBC over whole 8-byte blocks.

Keys of 8 bytes are single DES, 16 bytes two-key TDES (K1 K2 K1), 24 bytes three-key TDES.
cryptography keeps TripleDES in ``hazmat.decrepit``; its two-key form warns, so every key is
expanded to 24 bytes here (``k + k[:8]`` for two keys, ``k * 3`` for single DES) before use.
Bytes in, bytes out; wrong sizes raise :class:`~cardsvc.errors.CryptoError`.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

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
