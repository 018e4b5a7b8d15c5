"""NXP AN10922 symmetric key diversification: AES-128 (§2.2), 2TDEA (§2.4) and 3TDEA (§2.5).

The diversification input ``M`` is usually ``UID ‖ AID ‖ SystemIdentifier``
(:func:`diversification_input`). Each variant prefixes a constant byte and CMACs the result,
padding with ``80 00…`` to a fixed length (32 bytes for AES, 16 for TDEA) — unlike plain CMAC,
which pads only to the next block, so short inputs give different keys.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from cardsvc.cardcrypto import aes
from cardsvc.errors import CryptoError

_AES_PAD_TO = 32
_DES_PAD_TO = 16
_DES_BLOCK = 8
_DES_RB = 0x1B

BlockCbc = Callable[[bytes], bytes]  # CBC encryption with a zero IV


def diversification_input(*, uid: bytes, aid: bytes = b"", system_identifier: bytes = b"") -> bytes:
    """``M = UID ‖ AID ‖ SystemIdentifier`` (AN10922 §2.2.1 example order)."""
    return uid + aid + system_identifier


def diversify_aes128(master_key: bytes, m: bytes, *, pad_to_32: bool = True) -> bytes:
    """AES-128 diversified key ``CMAC(K, 01 ‖ M)`` with the AN10922 padding to 32 bytes.

    ``pad_to_32=False`` gives the plain-CMAC variant some deployments use (pads to 16 only).
    """
    if not 1 <= len(m) <= 31:
        raise CryptoError(f"AES diversification input must be 1..31 bytes, got {len(m)}")
    prepared = aes.AesKey(master_key)  # one cipher context for the subkeys and the MAC
    pad_to = _AES_PAD_TO if pad_to_32 else aes.BLOCK

    def cbc(data: bytes) -> bytes:
        return prepared.cbc_encrypt(aes.ZERO_BLOCK, data)

    return _cmac_padded(cbc, b"\x01" + m, block=aes.BLOCK, rb=0x87, pad_to=pad_to)


class AesDiversifier:
    """:func:`diversify_aes128` under one master key, prepared once for many derivations.

    The master key's cipher and CMAC subkeys are made at construction, so a derivation is two
    AES block operations (``01 ‖ M`` padded to 32 bytes is two blocks). Results equal
    :func:`diversify_aes128`'s; safe to share between threads (see :class:`aes.SharedAesKey`).
    """

    __slots__ = ("_k1", "_k2", "_key", "_pad_to")

    def __init__(self, master_key: bytes, *, pad_to_32: bool = True) -> None:
        self._key = aes.SharedAesKey(master_key)
        self._pad_to = _AES_PAD_TO if pad_to_32 else aes.BLOCK
        self._k1 = int.from_bytes(self._key.k1, "big")
        self._k2 = int.from_bytes(self._key.k2, "big")

    def __repr__(self) -> str:
        return "AesDiversifier(<key hidden>)"

    def diversify(self, m: bytes) -> bytes:
        """The diversified key of input ``M`` (1..31 bytes), as :func:`diversify_aes128`."""
        size = len(m)
        if not 1 <= size <= 31:
            raise CryptoError(f"AES diversification input must be 1..31 bytes, got {size}")
        if self._pad_to != _AES_PAD_TO:
            return self._diversify_short(m)
        # 01 ‖ M is 2..32 bytes: 32 is two whole blocks (K1); shorter is 80 00… padded to 32 (K2)
        if size == 31:
            data, subkey = b"\x01" + m, self._k1
        else:
            data, subkey = b"\x01" + m + b"\x80" + bytes(30 - size), self._k2
        encrypt = self._key.encryptor()
        chained = int.from_bytes(encrypt(data[: aes.BLOCK]), "big")
        chained ^= int.from_bytes(data[aes.BLOCK :], "big") ^ subkey
        return encrypt(chained.to_bytes(aes.BLOCK, "big"))

    def _diversify_short(self, m: bytes) -> bytes:
        """The plain-CMAC variant (``pad_to_32=False``): padded to the next block only."""
        data = b"\x01" + m
        if len(data) % aes.BLOCK:
            data, subkey = aes.pad_m2(data), self._k2
        else:
            subkey = self._k1
        last = (int.from_bytes(data[-aes.BLOCK :], "big") ^ subkey).to_bytes(aes.BLOCK, "big")
        encrypt = self._key.encryptor()
        return aes.chain_cbc(encrypt, aes.BLOCK, aes.ZERO_BLOCK, data[: -aes.BLOCK] + last)[-aes.BLOCK :]

def diversify_2tdea(master_key: bytes, m: bytes) -> bytes:
    """2TDEA (16-byte key) diversified key ``CMAC(K, 21 ‖ M) ‖ CMAC(K, 22 ‖ M)``.

    The result carries the master key's DES key version (see :func:`set_des_key_version`), as
    the AN10922 §2.4.1 worked example does.
    """
    if len(master_key) != 16:
        raise CryptoError(f"2TDEA key must be 16 bytes, got {len(master_key)}")
    cbc = _des_cbc(master_key + master_key[:8])
    halves = [_des_cmac(cbc, prefix + m) for prefix in (b"\x21", b"\x22")]
    return set_des_key_version(b"".join(halves), des_key_version(master_key))


def diversify_3tdea(master_key: bytes, m: bytes) -> bytes:
    """3TDEA (24-byte key) diversified key ``CMAC(K, 31‖M) ‖ CMAC(K, 32‖M) ‖ CMAC(K, 33‖M)``.

    Carries the master key's DES key version like :func:`diversify_2tdea` (AN10922 §2.5.1).
    """
    if len(master_key) != 24:
        raise CryptoError(f"3TDEA key must be 24 bytes, got {len(master_key)}")
    cbc = _des_cbc(master_key)
    thirds = [_des_cmac(cbc, prefix + m) for prefix in (b"\x31", b"\x32", b"\x33")]
    return set_des_key_version(b"".join(thirds), des_key_version(master_key))


def _des_cmac(cbc: BlockCbc, data: bytes) -> bytes:
    if not 2 <= len(data) <= _DES_PAD_TO:
        raise CryptoError(f"TDEA diversification input must be 1..15 bytes, got {len(data) - 1}")
    return _cmac_padded(cbc, data, block=_DES_BLOCK, rb=_DES_RB, pad_to=_DES_PAD_TO)


def _des_cbc(key24: bytes) -> BlockCbc:
    """CBC with a zero IV over one ECB context made once (a derivation runs it four to six times)."""
    encrypt = Cipher(TripleDES(key24), modes.ECB()).encryptor().update  # noqa: S305 - chained below

    def cbc(data: bytes) -> bytes:
        return aes.chain_cbc(encrypt, _DES_BLOCK, bytes(_DES_BLOCK), data)

    return cbc


def _cmac_padded(cbc: BlockCbc, data: bytes, *, block: int, rb: int, pad_to: int) -> bytes:
    """CMAC whose padding, when needed, extends the message to at least ``pad_to`` bytes."""
    k1, k2 = aes.cmac_subkeys(cbc(bytes(block)), rb)
    if len(data) >= pad_to and len(data) % block == 0:
        message, subkey = data, k1
    else:
        message = aes.pad_m2(data, block)
        message += bytes(max(0, pad_to - len(message)))
        subkey = k2
    last = aes.xor(message[-block:], subkey)
    return cbc(message[:-block] + last)[-block:]


def des_key_version(key: bytes) -> int:
    """The DESFire key version held in the parity bits of a DES key's first 8 bytes (MSB first)."""
    return sum((byte & 1) << (7 - n) for n, byte in enumerate(key[:_DES_BLOCK]))


def set_des_key_version(key: bytes, version: int) -> bytes:
    """Write ``version`` into the parity bits of bytes 0..7; for a 16-byte key the parity bits of
    bytes 8..15 get the complement, so the two halves never become equal (single DES)."""
    out = bytearray(key)
    for n in range(_DES_BLOCK):
        bit = (version >> (7 - n)) & 1
        out[n] = (out[n] & 0xFE) | bit
        if len(key) == 2 * _DES_BLOCK:
            out[n + _DES_BLOCK] = (out[n + _DES_BLOCK] & 0xFE) | (bit ^ 1)
    return bytes(out)
