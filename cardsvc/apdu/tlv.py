"""BER-TLV data objects (ISO/IEC 7816-4 §5.2, ISO/IEC 8825-1): parse and build, bounded.

Parsing never trusts a length: a value that runs past the buffer, an indefinite length, a tag or
length field longer than four bytes, or nesting deeper than ``max_depth`` raises
:class:`~cardsvc.errors.MalformedApdu`. Bytes ``00`` and ``FF`` between objects are padding
(ISO/IEC 7816-4 §5.2) and skipped. Constructed objects (bit 6 of the first tag byte) are parsed
into ``children``; primitive ones keep only ``value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cardsvc.errors import MalformedApdu

MAX_DEPTH = 8
_MAX_TAG_BYTES = 4
_MAX_LENGTH_BYTES = 4
_PADDING = (0x00, 0xFF)


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data object. ``tag`` is the tag bytes read big-endian (``0x9F27`` for ``9F 27``)."""

    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        return bool(tag_bytes(self.tag)[0] & 0x20)

    def find(self, tag: int) -> Tlv | None:
        """The first direct child with ``tag``."""
        return find(self.children, tag)

    def to_bytes(self) -> bytes:
        return encode(self.tag, self.value)


def tag_bytes(tag: int) -> bytes:
    """The wire form of a tag number, checked to be a well-formed BER tag."""
    if tag < 0:
        raise MalformedApdu(f"negative tag {tag}")
    raw = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    _check_tag(raw)
    return raw


def _check_tag(raw: bytes) -> None:
    if len(raw) > _MAX_TAG_BYTES:
        raise MalformedApdu(f"tag longer than {_MAX_TAG_BYTES} bytes: {raw.hex()}")
    multi = raw[0] & 0x1F == 0x1F
    if not multi and len(raw) != 1:
        raise MalformedApdu(f"tag {raw.hex()}: first byte does not announce more tag bytes")
    if multi and len(raw) == 1:
        raise MalformedApdu(f"tag {raw.hex()}: announced subsequent tag bytes are missing")
    if any(b & 0x80 == 0 for b in raw[1:-1]) or (len(raw) > 1 and raw[-1] & 0x80):
        raise MalformedApdu(f"tag {raw.hex()}: bad continuation bits")


def encode_length(length: int) -> bytes:
    """Definite length, short form below 128, else the shortest long form."""
    if length < 0:
        raise MalformedApdu(f"negative length {length}")
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(body) > _MAX_LENGTH_BYTES:
        raise MalformedApdu(f"length {length} too large")
    return bytes((0x80 | len(body),)) + body


def encode(tag: int, value: bytes) -> bytes:
    """One primitive or constructed object from its tag and (already encoded) value."""
    return tag_bytes(tag) + encode_length(len(value)) + value


def encode_constructed(tag: int, children: Iterable[Tlv]) -> bytes:
    return encode(tag, b"".join(child.to_bytes() for child in children))


def parse(data: bytes, *, max_depth: int = MAX_DEPTH) -> tuple[Tlv, ...]:
    """All objects in ``data`` (constructed ones parsed recursively up to ``max_depth``)."""
    return tuple(_parse_level(bytes(data), 1, max_depth))


def parse_one(data: bytes, *, max_depth: int = MAX_DEPTH) -> Tlv:
    """Exactly one object filling ``data`` (trailing padding allowed)."""
    objects = parse(data, max_depth=max_depth)
    if len(objects) != 1:
        raise MalformedApdu(f"expected one data object, found {len(objects)}")
    return objects[0]


def find(objects: Iterable[Tlv], tag: int) -> Tlv | None:
    return next((obj for obj in objects if obj.tag == tag), None)


def _parse_level(data: bytes, depth: int, max_depth: int) -> Iterator[Tlv]:
    if depth > max_depth:
        raise MalformedApdu(f"data objects nested deeper than {max_depth}")
    pos = 0
    while pos < len(data):
        if data[pos] in _PADDING:
            pos += 1
            continue
        tag_raw, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        value = data[pos : pos + length]
        pos += length
        children = _parse_level(value, depth + 1, max_depth) if tag_raw[0] & 0x20 else ()
        yield Tlv(int.from_bytes(tag_raw, "big"), value, tuple(children))


def _read_tag(data: bytes, pos: int) -> tuple[bytes, int]:
    end = pos + 1
    if data[pos] & 0x1F == 0x1F:
        while end < len(data) and data[end] & 0x80 and end - pos < _MAX_TAG_BYTES:
            end += 1
        end += 1
    if end > len(data):
        raise MalformedApdu(f"tag truncated at offset {pos}")
    raw = data[pos:end]
    _check_tag(raw)
    return raw, end


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise MalformedApdu(f"length missing at offset {pos}")
    first = data[pos]
    if first < 0x80:
        length, end = first, pos + 1
    else:
        count = first & 0x7F
        if count == 0 or count > _MAX_LENGTH_BYTES:
            raise MalformedApdu(f"unsupported length form {first:02X} at offset {pos}")
        end = pos + 1 + count
        if end > len(data):
            raise MalformedApdu(f"length field truncated at offset {pos}")
        length = int.from_bytes(data[pos + 1 : end], "big")
    if end + length > len(data):
        raise MalformedApdu(f"length {length} at offset {pos} runs past the {len(data)}-byte buffer")
    return length, end
