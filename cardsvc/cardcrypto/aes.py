"""AES-128 building blocks for NXP secure messaging: ECB/CBC, AES-CMAC (NIST SP 800-38B),
the NXP odd-byte MAC truncation, and ISO/IEC 9797-1 padding method 2.

Bytes in, bytes out; wrong key or block sizes raise :class:`~cardsvc.errors.CryptoError`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from cardsvc.errors import CryptoError

BLOCK = 16
KEY_SIZE = 16
ZERO_BLOCK = bytes(BLOCK)
_RB = 0x87  # CMAC subkey constant for 128-bit blocks


def check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise CryptoError(f"AES-128 key must be {KEY_SIZE} bytes, got {len(key)}")


def _check_blocks(data: bytes) -> None:
    if len(data) % BLOCK:
        raise CryptoError(f"data must be a multiple of {BLOCK} bytes, got {len(data)}")


def ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """AES-128-ECB encryption of whole blocks (used for single-block derivations)."""
    check_key(key)
    _check_blocks(data)
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - one-block primitive
    return enc.update(data) + enc.finalize()


def ecb_decrypt(key: bytes, data: bytes) -> bytes:
    check_key(key)
    _check_blocks(data)
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305 - one-block primitive
    return dec.update(data) + dec.finalize()


def cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC encryption without padding (callers pad with :func:`pad_m2`)."""
    check_key(key)
    _check_blocks(data)
    _check_iv(iv)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    check_key(key)
    _check_blocks(data)
    _check_iv(iv)
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def _check_iv(iv: bytes) -> None:
    if len(iv) != BLOCK:
        raise CryptoError(f"IV must be {BLOCK} bytes, got {len(iv)}")


def cmac(key: bytes, data: bytes) -> bytes:
    """The full 16-byte AES-CMAC of ``data``."""
    check_key(key)
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def truncate_mac(full_mac: bytes) -> bytes:
    """NXP MACt: the bytes at odd indexes 1, 3, …, 15 of a 16-byte CMAC (AN12196 §3.4)."""
    if len(full_mac) != BLOCK:
        raise CryptoError(f"a full CMAC is {BLOCK} bytes, got {len(full_mac)}")
    return full_mac[1::2]


def cmac_t(key: bytes, data: bytes) -> bytes:
    """The 8-byte truncated CMAC used in EV2 secure messaging and SUN."""
    return truncate_mac(cmac(key, data))


def pad_m2(data: bytes, block: int = BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append ``80`` then zeros to a whole block (always pads)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def unpad_m2(data: bytes, block: int = BLOCK) -> bytes:
    """Remove method-2 padding; raises :class:`CryptoError` when the padding is not well formed."""
    if not data or len(data) % block:
        raise CryptoError("padded data must be a non-empty multiple of the block size")
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= block:
        raise CryptoError("ISO/IEC 9797-1 method 2 padding not found")
    return stripped[:-1]


def cmac_subkeys(encrypt_block: bytes, rb: int = _RB) -> tuple[bytes, bytes]:
    """CMAC subkeys K1, K2 from ``L = E(K, 0^n)`` (SP 800-38B §6.1); ``rb`` 0x87 AES, 0x1B DES."""
    k1 = _double(encrypt_block, rb)
    return k1, _double(k1, rb)


def _double(block: bytes, rb: int) -> bytes:
    value = int.from_bytes(block, "big") << 1
    size = len(block)
    if value >> (8 * size):
        value ^= rb
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")


def xor(a: bytes, b: bytes) -> bytes:
    """Byte-wise XOR of two equally long strings."""
    if len(a) != len(b):
        raise CryptoError(f"xor of unequal lengths {len(a)} and {len(b)}")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")
