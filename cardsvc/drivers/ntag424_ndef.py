"""What the NTAG 424 DNA driver writes into the NDEF file, and how it reads it back. Pure.

* the phone-tap URL with SUN placeholders ``…?p=<32 × 0>&m=<16 × 0>`` and its SDM mirror offsets;
* the NDEF file content: NLEN ‖ one short URI record (NFC Forum URI RTD, prefix code 03/04);
* the card record in the file's tail: ``43 52 01 ‖ credential length ‖ number length ‖ number``.

Building raises :class:`~cardsvc.errors.ConfigError` / ``MalformedCredential`` for a plan that
cannot fit; parsing raises :class:`~cardsvc.errors.CardIntegrityError` for bytes that are not ours.
"""

from __future__ import annotations

from cardsvc.cardcrypto import sun
from cardsvc.errors import CardIntegrityError, ConfigError, MalformedCredential
from cardsvc.profiles.ntag424 import (
    SDM_ASCII,
    SDM_CTR_MIRROR,
    SDM_UID_MIRROR,
    Ntag424Config,
    SdmSettings,
    access_nibble,
)

RECORD_MAGIC = b"CR\x01"
URI_PREFIXES = ((b"https://", 4), (b"http://", 3))  # NFC Forum URI RTD identifier codes
_URI_HEADER = b"\xd1\x01"  # MB ME SR, TNF well-known; type length 1
NLEN_SIZE = 2


def _ascii(text: str, what: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{what} must be ASCII") from exc


def sun_url(cfg: Ntag424Config, base_url: str | None) -> bytes:
    """``base?p=<32 × 0>&m=<16 × 0>``: the card overwrites the zeros on every unauthenticated read."""
    if not base_url:
        raise ConfigError("an NTAG 424 DNA plan needs sun_base_url")
    base = _ascii(base_url, "sun_base_url")
    joiner = b"&" if b"?" in base else b"?"
    s = cfg.sun
    return (base + joiner + s.picc_param.encode() + b"=" + b"0" * sun.PICC_HEX_LEN + b"&"
            + s.mac_param.encode() + b"=" + b"0" * sun.MAC_HEX_LEN)


def ndef_content(cfg: Ntag424Config, base_url: str | None) -> bytes:
    """NLEN ‖ the URI record, to be written from offset 0 of the NDEF file."""
    url = sun_url(cfg, base_url)
    code, rest = next(((c, url[len(p):]) for p, c in URI_PREFIXES if url.startswith(p)), (0, url))
    if NLEN_SIZE + 5 + len(rest) > cfg.record.offset:
        raise ConfigError("sun_base_url too long for the NDEF file")
    record = _URI_HEADER + bytes((len(rest) + 1,)) + b"U" + bytes((code,)) + rest
    return len(record).to_bytes(NLEN_SIZE, "big") + record


def sdm_settings(cfg: Ntag424Config, ndef: bytes) -> SdmSettings:
    """Mirror offsets in the file: the URL ends with ``p=<32 hex>&m=<16 hex>`` (see :func:`sun_url`).

    The MAC input is empty (SDMMACInputOffset = SDMMACOffset), as in AN12196 §3.4.4.2.1.
    """
    s = cfg.sun
    mac = len(ndef) - sun.MAC_HEX_LEN
    picc = mac - len(s.mac_param) - 2 - sun.PICC_HEX_LEN
    return SdmSettings(options=SDM_UID_MIRROR | SDM_CTR_MIRROR | SDM_ASCII, meta_read=s.meta_read_key,
                       file_read=s.file_read_key, counter_retrieval=access_nibble(s.counter_retrieval),
                       picc_offset=picc, mac_input_offset=mac, mac_offset=mac)


def card_record(cfg: Ntag424Config, card_number: str, credential: bytes) -> bytes:
    """The card record written at ``cfg.record.offset`` of the NDEF file."""
    if len(credential) > cfg.files["data"].size:
        raise MalformedCredential("credential larger than file 03", reason="too_large")
    number = _ascii(card_number, "card number")
    record = RECORD_MAGIC + bytes((len(credential), len(number))) + number
    if cfg.record.offset + len(record) > cfg.files["ndef"].size:
        raise ConfigError("card number too long for the card record")
    return record


def parse_card_record(raw: bytes) -> tuple[str, int]:
    """``(card number, credential length)`` from the bytes read at the record offset."""
    if not raw.startswith(RECORD_MAGIC) or len(raw) < 5 or len(raw) < 5 + raw[4]:
        raise CardIntegrityError("card record missing or malformed")
    try:
        number = raw[5 : 5 + raw[4]].decode("ascii")
    except UnicodeDecodeError as exc:
        raise CardIntegrityError("card number is not ASCII") from exc
    return number, raw[3]


def parse_uri_message(message: bytes) -> bytes:
    """The URI of an NDEF message that is one short URI record (prefix code expanded)."""
    if message[:2] != _URI_HEADER or message[3:4] != b"U" or not 0 < message[2] == len(message) - 4:
        raise CardIntegrityError("NDEF message is not a single URI record")
    prefix = next((p for p, c in URI_PREFIXES if c == message[4]), b"")
    return prefix + message[5:]
