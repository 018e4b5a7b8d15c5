"""A trivial virtual card for plumbing tests and the loopback floor benchmark.

It answers ``FF CA 00 00 00`` (PC/SC GET DATA: UID) with its UID, ``00 B0`` with its stored bytes,
``00 D6`` by storing the data (non-volatile: it survives images), and echoes any other command's
data with ``9000``. ``tear`` counts torn commands in the image, so tests can see it was called.
"""

from __future__ import annotations

import os
from typing import Any

from cardsvc.emulator.base import JsonImage

ECHO_ATR = bytes.fromhex("3B8880014543484F434152441C")  # T=0,T=1; historical bytes "ECHOCARD"; TCK


class EchoCard:
    family = "echo"

    def __init__(self, uid: bytes, stored: bytes = b"", torn: int = 0) -> None:
        self._uid = uid
        self.stored = stored
        self.torn = torn
        self.powered_on = 0

    @classmethod
    def blank(cls, *, uid: bytes | None = None) -> EchoCard:
        return cls(uid or b"\x04" + os.urandom(6))

    @classmethod
    def from_image(cls, image: JsonImage) -> EchoCard:
        return cls(bytes.fromhex(image["uid"]), bytes.fromhex(image["stored"]), int(image["torn"]))

    @property
    def atr(self) -> bytes:
        return ECHO_ATR

    @property
    def uid(self) -> bytes:
        return self._uid

    def power_on(self) -> None:
        self.powered_on += 1

    def process(self, apdu: bytes) -> bytes:
        header = apdu[:2]
        if header == b"\xff\xca":
            return self._uid + b"\x90\x00"
        if header == b"\x00\xb0":
            return self.stored + b"\x90\x00"
        data = apdu[5:] if len(apdu) > 5 else b""
        if header == b"\x00\xd6":
            self.stored = data
            return b"\x90\x00"
        return data + b"\x90\x00"

    def tear(self, apdu: bytes) -> None:
        del apdu
        self.torn += 1

    def to_image(self) -> dict[str, Any]:
        return {"uid": self._uid.hex().upper(), "stored": self.stored.hex().upper(), "torn": self.torn}
