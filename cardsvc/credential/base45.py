"""Base45 (RFC 9285) — the QR-alphanumeric-safe text encoding of the credential bytes.

Decoding avoids a per-character Python loop (``bytes.translate`` plus big-int arithmetic) because it
sits on the offline verifier's hot path.
"""

from __future__ import annotations

from cardsvc.errors import MalformedCredential

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INVALID = 0xFF
_DECODE_TABLE = bytes(
    ALPHABET.index(chr(c)) if chr(c) in ALPHABET else _INVALID for c in range(256)
)


def b45encode(data: bytes) -> str:
    """Encode bytes as base45 text (RFC 9285 §4)."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        out.append(_chunk((data[i] << 8) | data[i + 1], 3))
    if len(data) % 2:
        out.append(_chunk(data[-1], 2))
    return "".join(out)


def _chunk(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, 45)
        digits.append(ALPHABET[digit])
    return "".join(digits)


def b45decode(text: str) -> bytes:
    """Decode base45 text; any invalid character, length or value raises ``MalformedCredential``."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise _bad("non-ASCII character in base45 text") from None
    values = raw.translate(_DECODE_TABLE)
    if _INVALID in values:
        raise _bad("character outside the base45 alphabet")
    whole, rest = divmod(len(values), 3)
    if rest == 0:
        return _triples(values, whole)
    if rest == 1:
        raise _bad("base45 length leaves a single character")
    return _triples(values[:-2], whole) + _tail(values[-2:])


def _triples(values: bytes, count: int) -> bytes:
    """Decode ``count`` 3-digit groups with a few big-int operations instead of a Python loop.

    Read as one big-endian integer, each group is a 24-bit slot ``c0·2¹⁶ + c1·2⁸ + c2``; masking
    out the three digit columns and forming ``c0 + 45·c1 + 2025·c2`` (< 2²⁴, so no carries between
    slots) yields every group's value in its own slot; a non-zero top byte means a value > 65535.
    """
    number = int.from_bytes(values, "big")
    low = _LOW_BYTE_MASKS.get(count) or _low_byte_mask(count)
    slots = ((number >> 16) & low) + 45 * ((number >> 8) & low) + 2025 * (number & low)
    words = slots.to_bytes(3 * count, "big")
    if words[0::3].count(0) != count:
        raise _bad("base45 triple above 65535")
    out = bytearray(2 * count)
    out[0::2] = words[1::3]
    out[1::2] = words[2::3]
    return bytes(out)


def _low_byte_mask(count: int) -> int:
    return int.from_bytes(b"\x00\x00\xff" * count, "big")


_LOW_BYTE_MASKS = {count: _low_byte_mask(count) for count in range(1, 257)}  # QR-sized inputs


def _tail(values: bytes) -> bytes:
    value = values[0] + 45 * values[1]
    if value > 0xFF:
        raise _bad("base45 final pair above 255")
    return bytes((value,))


def _bad(message: str) -> MalformedCredential:
    return MalformedCredential(message, reason="base45")
