"""Strict CBOR decoding for untrusted input: exactly one item, no trailing bytes, typed errors only.

cbor2 already bounds nesting depth (400) and reads declared lengths in chunks, so a 9-byte header
that claims an exabyte string fails on end of input instead of allocating. This module turns every
exception cbor2 (or a semantic-tag constructor it calls) can raise into the caller's error type.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, NoReturn

import cbor2

# cbor2 runs built-in constructors for semantic tags (datetime, Decimal, Fraction, re, UUID, IP
# address …) that cannot be switched off, and they raise whatever they raise — ValueError,
# InvalidOperation, even AssertionError (uuid.UUID with a text string, found by the fuzz tests).
# For untrusted input any failure of the decoder means "malformed", so every Exception is caught.
DECODE_FAILURES: tuple[type[BaseException], ...] = (Exception,)

Fail = Callable[[str], NoReturn]


def decode_exact(data: bytes, fail: Fail) -> Any:
    """Decode one CBOR item that must span ``data`` exactly; otherwise call ``fail(reason)``."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except DECODE_FAILURES:
        fail("cbor")
    if stream.tell() != len(data):
        fail("trailing_bytes")
    return value


def encode(value: object) -> bytes:
    """Deterministic-enough CBOR for what we emit (ints, bytes, text, lists, int-keyed maps)."""
    return cbor2.dumps(value, canonical=True)


def bstr_header(length: int) -> bytes:
    """The CBOR major-type-2 header for a byte string of ``length`` bytes."""
    if length < 24:
        return bytes((0x40 | length,))
    if length < 0x100:
        return bytes((0x58, length))
    if length < 0x10000:
        return b"\x59" + length.to_bytes(2, "big")
    return b"\x5a" + length.to_bytes(4, "big")
