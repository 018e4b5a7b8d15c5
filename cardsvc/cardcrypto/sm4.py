"""SM4 (GB/T 32907-2016) block operations and the SM4 cipher suite for FMCOS-class cards.

ASSUMPTION — to be confirmed against the chip vendor's manual: an SM4-capable FMCOS variant uses
the same command flow as the TDES one with a 16-byte block: external/internal authenticate
cryptograms are ``E(K, challenge ‖ 00…)`` over one 16-byte block, and the line-protection MAC
is a plain CBC-MAC (ISO/IEC 9797-1 MAC algorithm 1, padding method 2) with
IV = challenge ‖ 00… (16 bytes), truncated to 4 bytes by the caller.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cardsvc.cardcrypto.padding import pad_method2
from cardsvc.errors import CryptoError

BLOCK = 16
KEY_SIZE = 16
ZERO_IV = bytes(BLOCK)


def _check(key: bytes, data: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise CryptoError(f"SM4 key must be {KEY_SIZE} bytes, got {len(key)}")
    if len(data) % BLOCK:
        raise CryptoError(f"data must be a multiple of {BLOCK} bytes, got {len(data)}")


def ecb_encrypt(key: bytes, data: bytes) -> bytes:
    _check(key, data)
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - block primitive
    return enc.update(data) + enc.finalize()


def ecb_decrypt(key: bytes, data: bytes) -> bytes:
    _check(key, data)
    dec = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()  # noqa: S305 - block primitive
    return dec.update(data) + dec.finalize()


def cbc_mac(key: bytes, data: bytes, iv: bytes = ZERO_IV) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 1 with padding method 2: the last CBC block (16 bytes)."""
    if len(iv) != BLOCK:
        raise CryptoError(f"IV must be {BLOCK} bytes, got {len(iv)}")
    padded = pad_method2(data, BLOCK)
    _check(key, padded)
    enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return (enc.update(padded) + enc.finalize())[-BLOCK:]


class Sm4Suite:
    """SM4 behind the :class:`~cardsvc.cardcrypto.fmcos.BlockCipherSuite` interface (ASSUMPTION)."""

    name = "sm4"
    block_size = BLOCK
    key_size = KEY_SIZE

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        return ecb_encrypt(key, data)

    def decrypt(self, key: bytes, data: bytes) -> bytes:
        return ecb_decrypt(key, data)

    def mac(self, key: bytes, data: bytes, iv: bytes) -> bytes:
        return cbc_mac(key, data, iv)


SM4 = Sm4Suite()
