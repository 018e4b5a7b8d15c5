"""Command and response APDUs (ISO/IEC 7816-4 §5.1), short and extended length."""

from __future__ import annotations

from dataclasses import dataclass

from cardsvc.errors import MalformedApdu

SW_OK = 0x9000
_SHORT_MAX_LC = 255
_SHORT_MAX_LE = 256
_EXT_MAX = 65536


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU. ``le`` is the number of bytes expected (256/65536 = "as many as available")."""

    cla: int
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        if (self.cla | self.ins | self.p1 | self.p2) >> 8 == 0 and len(self.data) <= _SHORT_MAX_LC \
                and not self.extended and (self.le is None or 0 <= self.le <= _SHORT_MAX_LE):
            return  # a valid short APDU (the common case, per APDU on both sides of a link)
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise MalformedApdu(f"{name} must be one byte, got {value}")
        limit = _EXT_MAX - 1 if self.needs_extended else _SHORT_MAX_LC
        if len(self.data) > limit:
            raise MalformedApdu(f"command data too long: {len(self.data)} bytes")
        if self.le is not None and not 0 <= self.le <= _EXT_MAX:
            raise MalformedApdu(f"Le out of range: {self.le}")

    @property
    def needs_extended(self) -> bool:
        le_long = self.le is not None and self.le > _SHORT_MAX_LE
        return self.extended or len(self.data) > _SHORT_MAX_LC or le_long

    def to_bytes(self) -> bytes:
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.needs_extended:
            return header + self._extended_body()
        body = b""
        if self.data:
            body += bytes((len(self.data),)) + self.data
        if self.le is not None:
            body += bytes((self.le % _SHORT_MAX_LE,))
        return header + body

    def _extended_body(self) -> bytes:
        body = b""
        if self.data:
            body += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            le = (self.le % _EXT_MAX).to_bytes(2, "big")
            body += le if self.data else b"\x00" + le
        return body

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandApdu:
        """Parse the four ISO cases, short and extended (used by the card emulator)."""
        if len(raw) < 4:
            raise MalformedApdu(f"APDU shorter than a header: {len(raw)} bytes")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if body[0] == 0 and len(body) >= 3:
            return cls._parse_extended(cla, ins, p1, p2, body)
        return cls._parse_short(cla, ins, p1, p2, body)

    @classmethod
    def _parse_short(cls, cla: int, ins: int, p1: int, p2: int, body: bytes) -> CommandApdu:
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or _SHORT_MAX_LE)
        lc = body[0]
        if lc == 0 or len(body) not in (1 + lc, 2 + lc):
            raise MalformedApdu(f"Lc {lc} does not match body length {len(body)}")
        data = body[1 : 1 + lc]
        le = (body[1 + lc] or _SHORT_MAX_LE) if len(body) == 2 + lc else None
        return cls(cla, ins, p1, p2, data=data, le=le)

    @classmethod
    def _parse_extended(cls, cla: int, ins: int, p1: int, p2: int, body: bytes) -> CommandApdu:
        if len(body) == 3:
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or _EXT_MAX,
                       extended=True)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0 or len(body) not in (3 + lc, 5 + lc):
            raise MalformedApdu(f"extended Lc {lc} does not match body length {len(body)}")
        data = body[3 : 3 + lc]
        le = None
        if len(body) == 5 + lc:
            le = int.from_bytes(body[3 + lc :], "big") or _EXT_MAX
        return cls(cla, ins, p1, p2, data=data, le=le, extended=True)


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data and the two status bytes."""

    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise MalformedApdu(f"response shorter than a status word: {len(raw)} bytes")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))
