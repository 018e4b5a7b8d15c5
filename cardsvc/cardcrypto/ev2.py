"""NXP EV2 secure messaging (AES) as NTAG 424 DNA uses it (AN12196 §3.4, §5, §6; NT4H2421Gx §9.1).

Sans-I/O: the objects here turn bytes into bytes; drivers and the emulator move them.

* :class:`Ev2Authenticator` — the PCD side of ``AuthenticateEV2First`` (``90 71`` then ``90 AF``).
* :class:`Ev2CardHandshake` — the PICC side of the same handshake (used by the emulator).
* :class:`SecureMessaging` — an authenticated session: command counter, TI, MAC and FULL modes,
  for both directions. Every MAC check uses :func:`hmac.compare_digest` and raises
  :class:`~cardsvc.errors.CardIntegrityError` on mismatch.
* :func:`change_key_data` / :func:`parse_change_key_data` — the ChangeKey cryptogram plaintext.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import StrEnum

from cardsvc.cardcrypto import aes
from cardsvc.cardcrypto.crc import nxp_crc32
from cardsvc.errors import CardIntegrityError, CryptoError

RND_SIZE = 16
TI_SIZE = 4
MAC_SIZE = 8
CAPS = bytes(6)  # PDcap2 / PCDcap2 as NTAG 424 DNA returns them (all zero)
_SV1_LABEL = b"\xa5\x5a"
_SV2_LABEL = b"\x5a\xa5"
_SV_FIXED = b"\x00\x01\x00\x80"
_CTR_LIMIT = 0xFFFF


class CommMode(StrEnum):
    """Communication mode of a command (NT4H2421Gx §8.2.3)."""

    plain = "plain"
    mac = "mac"
    full = "full"


def rotate_left(data: bytes) -> bytes:
    """``RndX'``: the value rotated left by one byte."""
    return data[1:] + data[:1]


def session_vectors(rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """SV1 and SV2 (32 bytes each) from RndA and RndB (AN12196 §6.6 steps 20–21)."""
    _check_rnd(rnd_a)
    _check_rnd(rnd_b)
    body = _SV_FIXED + rnd_a[0:2] + aes.xor(rnd_a[2:8], rnd_b[0:6]) + rnd_b[6:16] + rnd_a[8:16]
    return _SV1_LABEL + body, _SV2_LABEL + body


def derive_session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """``(KSesAuthENC, KSesAuthMAC) = (CMAC(K, SV1), CMAC(K, SV2))``."""
    return _session_keys(aes.AesKey(key), rnd_a, rnd_b)


def _session_keys(key: aes.AesKey, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    sv1, sv2 = session_vectors(rnd_a, rnd_b)
    return key.cmac(sv1), key.cmac(sv2)


def _check_rnd(value: bytes) -> None:
    if len(value) != RND_SIZE:
        raise CryptoError(f"random numbers are {RND_SIZE} bytes, got {len(value)}")


@dataclass(slots=True)
class SecureMessaging:
    """One authenticated EV2 session: keys, transaction identifier and command counter.

    The same object serves the PCD (``protect_command`` / ``open_response``) and the PICC
    (``open_command`` / ``protect_response``). The counter advances once per command/response
    pair, when the response is protected (PICC) or opened (PCD).
    """

    enc_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)
    ti: bytes
    cmd_ctr: int = 0
    _enc: aes.AesKey = field(init=False, repr=False, compare=False)  # contexts made once per session
    _mac: aes.AesKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._enc = aes.AesKey(self.enc_key)
        self._mac = aes.AesKey(self.mac_key)
        if len(self.ti) != TI_SIZE:
            raise CryptoError(f"TI is {TI_SIZE} bytes, got {len(self.ti)}")

    # --- PCD side -----------------------------------------------------------------------------

    def protect_command(self, cmd: int, header: bytes, data: bytes, mode: CommMode) -> bytes:
        """The command data field for ``mode``: header ‖ (data | E(data)) ‖ MACt (plain: as is)."""
        if mode is CommMode.plain:
            return header + data
        payload = self._encrypt(data, self._command_iv()) if mode is CommMode.full else data
        return header + payload + self._command_mac(cmd, header + payload)

    def open_response(self, rc: int, body: bytes, mode: CommMode) -> bytes:
        """Check the response MAC (and decrypt in FULL mode); advances the command counter."""
        if mode is CommMode.plain:
            self._advance()
            return body
        if len(body) < MAC_SIZE:
            raise CardIntegrityError("response too short to carry a MAC")
        payload, mac = body[:-MAC_SIZE], body[-MAC_SIZE:]
        expected = self._response_mac(rc, payload)
        if not hmac.compare_digest(mac, expected):
            raise CardIntegrityError("response MAC does not match")
        plain = self._decrypt(payload, self._response_iv()) if mode is CommMode.full else payload
        self._advance()
        return plain

    # --- PICC side ----------------------------------------------------------------------------

    def open_command(self, cmd: int, header_len: int, body: bytes, mode: CommMode) -> tuple[bytes, bytes]:
        """Split and check a protected command data field; returns ``(header, plain data)``."""
        header, rest = body[:header_len], body[header_len:]
        if len(header) != header_len:
            raise CardIntegrityError("command shorter than its header")
        if mode is CommMode.plain:
            return header, rest
        if len(rest) < MAC_SIZE:
            raise CardIntegrityError("command too short to carry a MAC")
        payload, mac = rest[:-MAC_SIZE], rest[-MAC_SIZE:]
        if not hmac.compare_digest(mac, self._command_mac(cmd, header + payload)):
            raise CardIntegrityError("command MAC does not match")
        if mode is CommMode.full:
            return header, self._decrypt(payload, self._command_iv())
        return header, payload

    def protect_response(self, rc: int, data: bytes, mode: CommMode) -> bytes:
        """Response data for ``mode`` (data, E(data), plus MACt); advances the command counter."""
        if mode is CommMode.plain:
            self._advance()
            return data
        payload = self._encrypt(data, self._response_iv()) if mode is CommMode.full else data
        mac = self._response_mac(rc, payload)  # response IV and MAC use CmdCtr + 1
        self._advance()
        return payload + mac

    # --- shared -------------------------------------------------------------------------------

    def _advance(self) -> None:
        if self.cmd_ctr >= _CTR_LIMIT:
            raise CardIntegrityError("command counter exhausted: authenticate again")
        self.cmd_ctr += 1

    def _ctr(self, offset: int = 0) -> bytes:
        return (self.cmd_ctr + offset).to_bytes(2, "little")

    def _command_iv(self) -> bytes:
        return self._enc.ecb_encrypt(_SV1_LABEL + self.ti + self._ctr() + bytes(8))

    def _response_iv(self) -> bytes:
        return self._enc.ecb_encrypt(_SV2_LABEL + self.ti + self._ctr(1) + bytes(8))

    def _command_mac(self, cmd: int, payload: bytes) -> bytes:
        return self._mac.cmac_t(bytes((cmd,)) + self._ctr() + self.ti + payload)

    def _response_mac(self, rc: int, payload: bytes) -> bytes:
        return self._mac.cmac_t(bytes((rc,)) + self._ctr(1) + self.ti + payload)

    def _encrypt(self, data: bytes, iv: bytes) -> bytes:
        return self._enc.cbc_encrypt(iv, aes.pad_m2(data)) if data else b""

    def _decrypt(self, data: bytes, iv: bytes) -> bytes:
        if not data:
            return b""
        try:
            return aes.unpad_m2(self._enc.cbc_decrypt(iv, data))
        except CryptoError as exc:
            raise CardIntegrityError("encrypted data is not well formed") from exc


class Ev2Authenticator:
    """PCD side of AuthenticateEV2First with one key. ``rnd_a`` comes from the caller's RNG."""

    def __init__(self, key: bytes, rnd_a: bytes) -> None:
        _check_rnd(rnd_a)
        self._key = aes.AesKey(key)  # one set of cipher contexts for the whole handshake
        self._rnd_a = rnd_a
        self._rnd_b: bytes | None = None

    def __repr__(self) -> str:
        return "Ev2Authenticator(<key hidden>)"

    @staticmethod
    def first_command_data(key_no: int, pcd_caps: bytes = b"") -> bytes:
        """Data of ``90 71``: KeyNo ‖ LenCap ‖ PCDcap2."""
        return bytes((key_no, len(pcd_caps))) + pcd_caps

    def answer_challenge(self, encrypted_rnd_b: bytes) -> bytes:
        """From the card's ``E(K, RndB)`` the 32-byte data of ``90 AF``: ``E(K, RndA ‖ RndB')``."""
        if len(encrypted_rnd_b) != RND_SIZE:
            raise CardIntegrityError(f"card challenge must be {RND_SIZE} bytes")
        self._rnd_b = self._key.cbc_decrypt(aes.ZERO_BLOCK, encrypted_rnd_b)
        plain = self._rnd_a + rotate_left(self._rnd_b)
        return self._key.cbc_encrypt(aes.ZERO_BLOCK, plain)

    def finish(self, card_response: bytes) -> SecureMessaging:
        """Check the card's ``E(K, TI ‖ RndA' ‖ PDcap2 ‖ PCDcap2)``; the session on success."""
        if self._rnd_b is None:
            raise CryptoError("answer_challenge() must come first")
        if len(card_response) != 2 * RND_SIZE:
            raise CardIntegrityError("authentication response must be 32 bytes")
        plain = self._key.cbc_decrypt(aes.ZERO_BLOCK, card_response)
        ti, rnd_a_rot = plain[:TI_SIZE], plain[TI_SIZE : TI_SIZE + RND_SIZE]
        if not hmac.compare_digest(rnd_a_rot, rotate_left(self._rnd_a)):
            raise CardIntegrityError("card did not prove knowledge of the key (RndA' mismatch)")
        enc, mac = _session_keys(self._key, self._rnd_a, self._rnd_b)
        return SecureMessaging(enc_key=enc, mac_key=mac, ti=ti)


class Ev2CardHandshake:
    """PICC side of AuthenticateEV2First: ``rnd_b`` and ``ti`` come from the card's RNG."""

    def __init__(self, key: bytes, rnd_b: bytes, ti: bytes) -> None:
        _check_rnd(rnd_b)
        self._key, self._rnd_b, self._ti = aes.AesKey(key), rnd_b, ti

    def __repr__(self) -> str:
        return "Ev2CardHandshake(<key hidden>)"

    def challenge(self) -> bytes:
        """``E(K, RndB)``, the answer to ``90 71``."""
        return self._key.cbc_encrypt(aes.ZERO_BLOCK, self._rnd_b)

    def respond(self, data: bytes) -> tuple[bytes, SecureMessaging]:
        """Check ``E(K, RndA ‖ RndB')``; the card's response and the new session.

        Raises :class:`CardIntegrityError` when the PCD used another key.
        """
        if len(data) != 2 * RND_SIZE:
            raise CardIntegrityError("authentication data must be 32 bytes")
        plain = self._key.cbc_decrypt(aes.ZERO_BLOCK, data)
        rnd_a, rnd_b_rot = plain[:RND_SIZE], plain[RND_SIZE:]
        if not hmac.compare_digest(rnd_b_rot, rotate_left(self._rnd_b)):
            raise CardIntegrityError("RndB' mismatch: wrong key")
        reply = self._key.cbc_encrypt(aes.ZERO_BLOCK, self._ti + rotate_left(rnd_a) + CAPS + CAPS)
        enc, mac = _session_keys(self._key, rnd_a, self._rnd_b)
        return reply, SecureMessaging(enc_key=enc, mac_key=mac, ti=self._ti)


def change_key_data(new_key: bytes, version: int, old_key: bytes | None = None) -> bytes:
    """ChangeKey plaintext (before FULL-mode padding and encryption).

    Changing the key the session authenticated with: ``NewKey ‖ KeyVer``.
    Any other key: ``(NewKey ⊕ OldKey) ‖ KeyVer ‖ CRC32(NewKey)`` — ``old_key`` is required.
    """
    aes.check_key(new_key)
    if not 0 <= version <= 0xFF:
        raise CryptoError(f"key version must be one byte, got {version}")
    if old_key is None:
        return new_key + bytes((version,))
    return aes.xor(new_key, old_key) + bytes((version,)) + nxp_crc32(new_key)


def parse_change_key_data(plain: bytes, old_key: bytes | None = None) -> tuple[bytes, int]:
    """The PICC side of :func:`change_key_data`: ``(new_key, version)``; checks the CRC."""
    if old_key is None:
        if len(plain) != aes.KEY_SIZE + 1:
            raise CardIntegrityError("ChangeKey data for the authenticated key must be 17 bytes")
        return plain[: aes.KEY_SIZE], plain[aes.KEY_SIZE]
    if len(plain) != aes.KEY_SIZE + 5:
        raise CardIntegrityError("ChangeKey data for another key must be 21 bytes")
    new_key = aes.xor(plain[: aes.KEY_SIZE], old_key)
    if not hmac.compare_digest(plain[aes.KEY_SIZE + 1 :], nxp_crc32(new_key)):
        raise CardIntegrityError("ChangeKey CRC32 of the new key does not match")
    return new_key, plain[aes.KEY_SIZE]
