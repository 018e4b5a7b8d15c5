"""Field types shared by the profile models: hex in files, bytes in code."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer


def _parse_hex(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a hex string")
    text = value.replace(" ", "").replace(":", "")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise ValueError(f"not valid hex: {value!r}") from exc


HexBytes = Annotated[bytes, BeforeValidator(_parse_hex), PlainSerializer(lambda b: b.hex().upper())]
