"""Secure Unique NFC (SUN) messages of NTAG 424 DNA Secure Dynamic Messaging (AN12196 §3).

Card side (emulator): :func:`encrypt_picc_data` and :func:`sdm_mac` produce what the chip mirrors
into the NDEF URL. Verifier side: :func:`parse_sun_url` then :func:`verify_sun` —
decrypt PICCData with ``K_SDMMetaRead`` (UID + 24-bit little-endian SDMReadCtr), derive the SDM
session MAC key from ``K_SDMFileRead`` (usually diversified per UID, hence the key *callback*),
and compare the truncated CMAC with :func:`hmac.compare_digest`. Every failure raises:
:class:`~cardsvc.errors.MalformedCredential` for text that is not a SUN message,
:class:`~cardsvc.errors.CardIntegrityError` for a message that does not verify.

Replay protection (the counter must grow) is the verifier's job; this module returns the counter.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from cardsvc.cardcrypto import aes
from cardsvc.errors import CardIntegrityError, CryptoError, MalformedCredential

PICC_DATA_TAG = 0xC7  # UID mirrored, SDMReadCtr mirrored, UID length 7 (AN12196 §3.4.2.1)
UID_SIZE = 7
COUNTER_MAX = 0xFFFFFF
PICC_HEX_LEN = 32
MAC_HEX_LEN = 16
_SV_FIXED = b"\x00\x01\x00\x80"
_SV1_LABEL = b"\xc3\x3c"
_SV2_LABEL = b"\x3c\xc3"


@dataclass(frozen=True, slots=True)
class SunReading:
    """What a verified SUN message proves: this UID's chip produced read number ``counter``."""

    uid: bytes
    counter: int


@dataclass(frozen=True, slots=True)
class SunMessage:
    """The cryptographic parts of a SUN URL, as bytes."""

    picc_data: bytes
    mac: bytes
    mac_input: bytes = b""


def counter_bytes(counter: int) -> bytes:
    """SDMReadCtr as used in PICCData and the session vectors: 3 bytes, LSB first."""
    if not 0 <= counter <= COUNTER_MAX:
        raise CryptoError(f"SDMReadCtr out of range: {counter}")
    return counter.to_bytes(3, "little")


def _session_vector(label: bytes, uid: bytes, counter: int) -> bytes:
    if len(uid) != UID_SIZE:
        raise CryptoError(f"UID must be {UID_SIZE} bytes, got {len(uid)}")
    return label + _SV_FIXED + uid + counter_bytes(counter)


def sdm_session_mac_key(file_read_key: bytes, uid: bytes, counter: int) -> bytes:
    """``KSesSDMFileReadMAC = CMAC(K_SDMFileRead, 3CC3 0001 0080 ‖ UID ‖ SDMReadCtr)``."""
    return aes.cmac(file_read_key, _session_vector(_SV2_LABEL, uid, counter))


def sdm_session_enc_key(file_read_key: bytes, uid: bytes, counter: int) -> bytes:
    """``KSesSDMFileReadENC = CMAC(K_SDMFileRead, C33C 0001 0080 ‖ UID ‖ SDMReadCtr)``."""
    return aes.cmac(file_read_key, _session_vector(_SV1_LABEL, uid, counter))


def sdm_mac(file_read_key: bytes, uid: bytes, counter: int, mac_input: bytes = b"") -> bytes:
    """SDMMAC: the odd bytes of ``CMAC(KSesSDMFileReadMAC, mac_input)`` (8 bytes)."""
    return aes.cmac_t(sdm_session_mac_key(file_read_key, uid, counter), mac_input)


def decrypt_file_data(file_read_key: bytes, uid: bytes, counter: int, enc_file_data: bytes) -> bytes:
    """SDMENCFileData in clear: AES-CBC with KSesSDMFileReadENC, IV = E(key, SDMReadCtr ‖ 0^13)."""
    if not enc_file_data or len(enc_file_data) % aes.BLOCK:
        raise MalformedCredential("encrypted file data must be whole AES blocks", reason="sun_malformed")
    key = sdm_session_enc_key(file_read_key, uid, counter)
    iv = aes.ecb_encrypt(key, counter_bytes(counter) + bytes(13))
    return aes.cbc_decrypt(key, iv, enc_file_data)


def encrypt_picc_data(meta_read_key: bytes, uid: bytes, counter: int, padding: bytes) -> bytes:
    """PICCENCData = ``E(K_SDMMetaRead, C7 ‖ UID ‖ SDMReadCtr ‖ padding)``; padding is 5 random bytes."""
    if len(padding) != 16 - 1 - UID_SIZE - 3:
        raise CryptoError("PICCData padding must be 5 bytes")
    if len(uid) != UID_SIZE:
        raise CryptoError(f"UID must be {UID_SIZE} bytes, got {len(uid)}")
    plain = bytes((PICC_DATA_TAG,)) + uid + counter_bytes(counter) + padding
    return aes.cbc_encrypt(meta_read_key, aes.ZERO_BLOCK, plain)


def decrypt_picc_data(meta_read_key: bytes, picc_data: bytes) -> SunReading:
    """UID and counter from PICCENCData; a wrong key or foreign data raises CardIntegrityError."""
    if len(picc_data) != aes.BLOCK:
        raise MalformedCredential("PICCData must be 16 bytes", reason="sun_malformed")
    plain = aes.cbc_decrypt(meta_read_key, aes.ZERO_BLOCK, picc_data)
    if plain[0] != PICC_DATA_TAG:
        raise CardIntegrityError("PICCData does not decrypt to a UID+counter record (wrong key?)")
    uid = plain[1 : 1 + UID_SIZE]
    counter = int.from_bytes(plain[1 + UID_SIZE : 4 + UID_SIZE], "little")
    return SunReading(uid=uid, counter=counter)


class PiccDecryptor:
    """:func:`decrypt_picc_data` under one K_SDMMetaRead, prepared once for many messages.

    PICCData is one block under a zero IV, so opening it is one AES block decryption with a
    context made once (per thread: see :class:`aes.SharedAesKey`). Results and errors equal
    :func:`decrypt_picc_data`'s.
    """

    __slots__ = ("_key",)

    def __init__(self, meta_read_key: bytes) -> None:
        self._key = aes.SharedAesKey(meta_read_key)

    def __repr__(self) -> str:
        return "PiccDecryptor(<key hidden>)"

    def decrypt(self, picc_data: bytes) -> SunReading:
        if len(picc_data) != aes.BLOCK:
            raise MalformedCredential("PICCData must be 16 bytes", reason="sun_malformed")
        plain = self._key.decryptor()(picc_data)
        if plain[0] != PICC_DATA_TAG:
            raise CardIntegrityError("PICCData does not decrypt to a UID+counter record (wrong key?)")
        return SunReading(uid=plain[1 : 1 + UID_SIZE],
                          counter=int.from_bytes(plain[1 + UID_SIZE : 4 + UID_SIZE], "little"))


def verify_sun(
    message: SunMessage, *, meta_read_key: bytes, file_read_key: Callable[[bytes], bytes],
) -> SunReading:
    """Verify a SUN message; ``file_read_key(uid)`` gives that card's K_SDMFileRead.

    Checklist: 1. PICCData decrypts to tag C7; 2. the session key comes from the decrypted UID
    and counter; 3. the truncated CMAC matches (constant time). Raises on any failure.
    """
    reading = decrypt_picc_data(meta_read_key, message.picc_data)
    if len(message.mac) != 8:
        raise MalformedCredential("SDMMAC must be 8 bytes", reason="sun_malformed")
    expected = sdm_mac(file_read_key(reading.uid), reading.uid, reading.counter, message.mac_input)
    if not hmac.compare_digest(message.mac, expected):
        raise CardIntegrityError("SUN MAC does not match")
    return reading


def parse_sun_url(url: str, *, picc_param: str = "p", mac_param: str = "m") -> SunMessage:
    """The PICCData and SDMMAC query parameters of a tapped URL (upper- or lower-case hex).

    The MAC input is empty: our profile places SDMMACInputOffset at SDMMACOffset.
    """
    try:
        query = parse_qs(urlsplit(url).query, strict_parsing=False)
    except ValueError as exc:
        raise MalformedCredential("not a URL", reason="sun_malformed") from exc
    picc = _single_hex(query, picc_param, PICC_HEX_LEN)
    mac = _single_hex(query, mac_param, MAC_HEX_LEN)
    return SunMessage(picc_data=picc, mac=mac)


def sun_message(picc_hex: str, mac_hex: str, *, picc_param: str = "p", mac_param: str = "m") -> SunMessage:
    """The message of a tap whose query is already split: the PICCData and SDMMAC parameter values
    (upper- or lower-case hex), as :func:`parse_sun_url` would take them from the URL. Only hex
    digits are accepted (no whitespace); the names are for the error messages."""
    return SunMessage(picc_data=_hex_value(picc_hex, picc_param, PICC_HEX_LEN),
                      mac=_hex_value(mac_hex, mac_param, MAC_HEX_LEN))


def _hex_value(value: str, name: str, length: int) -> bytes:
    if len(value) != length:
        raise MalformedCredential(f"URL parameter {name!r} missing or not {length} hex digits",
                                  reason="sun_malformed")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) * 2 != length:  # fromhex skips whitespace: a short result was not all hex digits
        raise MalformedCredential(f"URL parameter {name!r} is not hex", reason="sun_malformed")
    return raw


def _single_hex(query: dict[str, list[str]], name: str, length: int) -> bytes:
    values = query.get(name, [])
    if len(values) != 1 or len(values[0]) != length:
        raise MalformedCredential(f"URL parameter {name!r} missing or not {length} hex digits",
                                  reason="sun_malformed")
    try:
        return bytes.fromhex(values[0])
    except ValueError as exc:
        raise MalformedCredential(f"URL parameter {name!r} is not hex", reason="sun_malformed") from exc
