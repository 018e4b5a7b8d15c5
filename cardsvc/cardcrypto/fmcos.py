"""FMCOS 2.0 (FM1208 class) card cryptography, sans I/O: authentication cryptograms, line
protection (MAC, MAC + ciphertext) and the cipher suites behind them.

- External authenticate: the host answers a card challenge with ``E(K, challenge ‖ 00…)``
  (one block; an 8-byte challenge fills a DES block exactly).
- Internal authenticate: the card answers a host challenge with the same construction; the
  verifier recomputes it with :func:`verify_internal_auth`, which fails closed.
- Line protection MAC: CLA |= 04, Lc += 4, MAC over ``CLA INS P1 P2 Lc' data`` padded ``80 00…``,
  IV = card challenge (4 bytes) ‖ 00…, first 4 bytes kept. TDES uses ISO/IEC 9797-1 MAC
  algorithm 3 (retail MAC); the SM4 suite is an ASSUMPTION (see :mod:`cardsvc.cardcrypto.sm4`).
- Line encryption (files/keys with the ``C0`` flag): ``Ld ‖ data``, padded ``80 00…`` only when
  not already whole blocks, encrypted block by block (ECB) under the protecting key.
"""

from __future__ import annotations

import hmac
from typing import Protocol

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto import des, retail_mac
from cardsvc.cardcrypto.padding import pad_method2
from cardsvc.cardcrypto.sm4 import SM4
from cardsvc.errors import CardIntegrityError, CryptoError

MAC_SIZE = 4
LINE_CLA_BIT = 0x04
_MIN_CHALLENGE = 4


class BlockCipherSuite(Protocol):
    """The block cipher a card's keys use: TDES (default) or SM4 (assumption)."""

    @property
    def name(self) -> str: ...

    @property
    def block_size(self) -> int: ...

    @property
    def key_size(self) -> int: ...

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        """ECB over whole blocks."""

    def decrypt(self, key: bytes, data: bytes) -> bytes: ...

    def mac(self, key: bytes, data: bytes, iv: bytes) -> bytes:
        """Full-block MAC over ``data`` padded with method 2, chained from ``iv``."""


class TdesSuite:
    """Two-key TDES keys, 8-byte blocks, retail MAC."""

    name = "tdes"
    block_size = des.BLOCK
    key_size = 16

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        return des.ecb_encrypt(key, data)

    def decrypt(self, key: bytes, data: bytes) -> bytes:
        return des.ecb_decrypt(key, data)

    def mac(self, key: bytes, data: bytes, iv: bytes) -> bytes:
        return retail_mac.retail_mac(key, data, iv)


class PreparedTdesSuite:
    """:class:`TdesSuite` with each key's cipher contexts made once and kept with this object.

    Results equal :class:`TdesSuite`'s. For one card (or session) that uses a handful of keys
    many times, from one thread: the contexts are mutable, and the key material lives as long as
    this object, so it belongs to whoever already holds those keys (the emulated card).
    """

    name = "tdes"
    block_size = des.BLOCK
    key_size = 16
    _LIMIT = 16  # a card holds a few keys; a key file rewritten often just starts over

    def __init__(self) -> None:
        self._ciphers: dict[bytes, des.DesKey] = {}
        self._macs: dict[bytes, retail_mac.RetailMacKey] = {}

    def __repr__(self) -> str:
        return "PreparedTdesSuite(<keys hidden>)"

    def _cipher(self, key: bytes) -> des.DesKey:
        prepared = self._ciphers.get(key)
        if prepared is None:
            if len(self._ciphers) >= self._LIMIT:
                self._ciphers.clear()
            prepared = self._ciphers[key] = des.DesKey(key)
        return prepared

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        return self._cipher(key).ecb_encrypt(data)

    def decrypt(self, key: bytes, data: bytes) -> bytes:
        return self._cipher(key).ecb_decrypt(data)

    def mac(self, key: bytes, data: bytes, iv: bytes) -> bytes:
        prepared = self._macs.get(key)
        if prepared is None:
            if len(self._macs) >= self._LIMIT:
                self._macs.clear()
            prepared = self._macs[key] = retail_mac.RetailMacKey(key)
        return prepared.mac(data, iv)


TDES = TdesSuite()
_SUITES: dict[str, BlockCipherSuite] = {"tdes": TDES, "sm4": SM4}


def suite(name: str) -> BlockCipherSuite:
    """The cipher suite by profile name (``tdes`` or ``sm4``)."""
    try:
        return _SUITES[name]
    except KeyError:
        raise CryptoError(f"unknown FMCOS cipher suite {name!r}; known: {sorted(_SUITES)}") from None


def prepared_suite(name: str) -> BlockCipherSuite:
    """A suite of one's own for one card or session: TDES with prepared key contexts, else the
    shared suite (:func:`suite`)."""
    return PreparedTdesSuite() if name == "tdes" else suite(name)


def _check_key(cs: BlockCipherSuite, key: bytes) -> None:
    if len(key) != cs.key_size:
        raise CryptoError(f"{cs.name} key must be {cs.key_size} bytes, got {len(key)}")


def _one_block(cs: BlockCipherSuite, value: bytes, what: str) -> bytes:
    if not _MIN_CHALLENGE <= len(value) <= cs.block_size:
        raise CryptoError(f"{what} must be {_MIN_CHALLENGE}..{cs.block_size} bytes, got {len(value)}")
    return value + bytes(cs.block_size - len(value))


# --- authentication ------------------------------------------------------------------------------


def auth_cryptogram(cs: BlockCipherSuite, key: bytes, challenge: bytes) -> bytes:
    """``E(K, challenge ‖ 00…)``: EXTERNAL AUTHENTICATE data, and the INTERNAL AUTHENTICATE answer."""
    _check_key(cs, key)
    return cs.encrypt(key, _one_block(cs, challenge, "challenge"))


def verify_internal_auth(cs: BlockCipherSuite, key: bytes, challenge: bytes, cryptogram: bytes) -> None:
    """Check a card's INTERNAL AUTHENTICATE answer; raises :class:`CardIntegrityError` on mismatch."""
    expected = auth_cryptogram(cs, key, challenge)
    if not hmac.compare_digest(expected, cryptogram):
        raise CardIntegrityError("internal authentication cryptogram does not verify")


# --- line protection -----------------------------------------------------------------------------


def mac_iv(cs: BlockCipherSuite, challenge: bytes) -> bytes:
    """IV for line protection: the card challenge padded with zeros to one block."""
    return _one_block(cs, challenge, "challenge")


def line_mac(cs: BlockCipherSuite, key: bytes, data: bytes, challenge: bytes) -> bytes:
    """The 4-byte line-protection MAC over ``data`` (a command header+body or response data)."""
    _check_key(cs, key)
    return cs.mac(key, data, mac_iv(cs, challenge))[:MAC_SIZE]


def _mac_input(cla: int, ins: int, p1: int, p2: int, body: bytes) -> bytes:
    return bytes((cla | LINE_CLA_BIT, ins, p1, p2, len(body) + MAC_SIZE)) + body


def protect(cs: BlockCipherSuite, key: bytes, apdu: CommandApdu, challenge: bytes) -> CommandApdu:
    """Wrap a command for line protection: CLA |= 04 and the 4-byte MAC appended to the data."""
    mac = line_mac(cs, key, _mac_input(apdu.cla, apdu.ins, apdu.p1, apdu.p2, apdu.data), challenge)
    return CommandApdu(apdu.cla | LINE_CLA_BIT, apdu.ins, apdu.p1, apdu.p2, apdu.data + mac, apdu.le)


def unprotect(cs: BlockCipherSuite, key: bytes, apdu: CommandApdu, challenge: bytes) -> bytes:
    """Card side: check a line-protected command's MAC and return its data without the MAC.

    Raises :class:`CardIntegrityError` when the MAC is missing or wrong.
    """
    if len(apdu.data) < MAC_SIZE:
        raise CardIntegrityError("line-protected command carries no MAC")
    body, mac = apdu.data[:-MAC_SIZE], apdu.data[-MAC_SIZE:]
    expected = line_mac(cs, key, _mac_input(apdu.cla, apdu.ins, apdu.p1, apdu.p2, body), challenge)
    if not hmac.compare_digest(expected, mac):
        raise CardIntegrityError("line-protection MAC does not verify")
    return body


def verify_response_mac(cs: BlockCipherSuite, key: bytes, response: bytes, challenge: bytes) -> bytes:
    """Host side: split ``data ‖ MAC`` of a line-protected READ answer, check it, return the data."""
    if len(response) < MAC_SIZE:
        raise CardIntegrityError("line-protected response carries no MAC")
    data, mac = response[:-MAC_SIZE], response[-MAC_SIZE:]
    if not hmac.compare_digest(line_mac(cs, key, data, challenge), mac):
        raise CardIntegrityError("response MAC does not verify")
    return data


# --- line encryption -----------------------------------------------------------------------------


def encrypt_line(cs: BlockCipherSuite, key: bytes, plaintext: bytes) -> bytes:
    """``E(K, Ld ‖ data ‖ [80 00…])``: padding only when ``Ld ‖ data`` is not whole blocks."""
    _check_key(cs, key)
    if len(plaintext) > 0xFF:
        raise CryptoError(f"line encryption takes at most 255 bytes, got {len(plaintext)}")
    block = bytes((len(plaintext),)) + plaintext
    if len(block) % cs.block_size:
        block = pad_method2(block, cs.block_size)
    return cs.encrypt(key, block)


def decrypt_line(cs: BlockCipherSuite, key: bytes, ciphertext: bytes) -> bytes:
    """Inverse of :func:`encrypt_line`; raises :class:`CardIntegrityError` on a malformed block."""
    _check_key(cs, key)
    if not ciphertext or len(ciphertext) % cs.block_size:
        raise CardIntegrityError("ciphertext is not whole blocks")
    plain = cs.decrypt(key, ciphertext)
    length = plain[0]
    tail = plain[1 + length :]
    if 1 + length > len(plain) or not _valid_line_padding(tail, cs.block_size):
        raise CardIntegrityError("decrypted length or padding is wrong")
    return plain[1 : 1 + length]


def _valid_line_padding(tail: bytes, block: int) -> bool:
    if not tail:
        return True
    return len(tail) < block and tail[0] == 0x80 and not any(tail[1:])
