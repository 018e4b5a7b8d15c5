"""The non-volatile part of an emulated FMCOS card: DFs, key files, keys and EFs, the factory
state, the ATR, and the card's JSON image.

The image is JSON-able (hex strings for bytes, two-digit hex for attribute bytes) and
round-trips exactly: ``df_to_image(df_from_image(x)) == x`` for any image this module wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class StatusWord(Exception):
    """Raised inside the card model: answer this status word to the command."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


KEY_RECORD_OVERHEAD = 6  # key id + type + four attribute bytes, before the key value
EXTERNAL_AUTH = 0x39
INTERNAL_AUTH = 0x34
LINE_PROTECTION = 0x36
BINARY = 0x28
FIXED_RECORD = 0x2A


@dataclass
class CardKey:
    """One key record: type, use/change rights, two type-specific bytes, and the key value.

    ``third``/``fourth``: follow-up state and error counter (39), key version and algorithm id (34),
    FF and error counter (36). Error counters are ``limit ‖ remaining`` nibbles. ``protected``:
    installed with the 80/C0 type flag, so updates must be line-protected (ASSUMPTION).
    """

    key_id: int
    type: int
    use: int
    change: int
    third: int
    fourth: int
    value: bytes = field(repr=False)  # key material stays out of logs and tracebacks
    protected: bool = False

    @property
    def attempts_left(self) -> int:
        return self.fourth & 0x0F

    @property
    def attempt_limit(self) -> int:
        return self.fourth >> 4


@dataclass
class KeyFile:
    fid: int
    size: int
    sfi: int
    add_right: int
    keys: dict[int, CardKey] = field(default_factory=dict)

    def used(self) -> int:
        return sum(KEY_RECORD_OVERHEAD + len(k.value) for k in self.keys.values())

    def first_of_type(self, key_type: int) -> CardKey | None:
        return next((self.keys[i] for i in sorted(self.keys) if self.keys[i].type == key_type), None)


@dataclass
class ElementaryFile:
    fid: int
    type: int  # BINARY or FIXED_RECORD
    flags: int  # 0x80 line protection (MAC), 0xC0 MAC + encryption
    size: int
    read_right: int
    write_right: int
    data: bytearray
    record_length: int = 0


@dataclass
class DedicatedFile:
    fid: int
    name: bytes
    size: int
    create_right: int
    erase_right: int
    app_id: int
    key_file: KeyFile | None = None
    efs: dict[int, ElementaryFile] = field(default_factory=dict)
    dfs: list[DedicatedFile] = field(default_factory=list)

    def used(self) -> int:
        key_file = self.key_file.size if self.key_file else 0
        return key_file + sum(e.size for e in self.efs.values()) + sum(d.size for d in self.dfs)

    def fids(self) -> set[int]:
        own = {self.key_file.fid} if self.key_file else set()
        return own | set(self.efs) | {d.fid for d in self.dfs}

    def is_protected(self) -> bool:
        """A DF whose key file holds no external-auth key is unprotected (ASSUMPTION)."""
        key_file = self.key_file
        return key_file is not None and any(k.type == EXTERNAL_AUTH for k in key_file.keys.values())

    def add(self, created: DedicatedFile | KeyFile | ElementaryFile) -> None:
        if isinstance(created, KeyFile):
            self.key_file = created
        elif isinstance(created, DedicatedFile):
            self.dfs.append(created)
        else:
            self.efs[created.fid] = created

    def walk(self) -> list[DedicatedFile]:
        out = [self]
        for child in self.dfs:
            out += child.walk()
        return out


# --- factory state and ATR ------------------------------------------------------------------------


FACTORY_KEY = b"\xff" * 16
MF_FID = 0x3F00
_HISTORICAL_PREFIX = bytes.fromhex("20900000000000")  # FM1208 ATS historical bytes before the UID


def factory_mf() -> DedicatedFile:
    """The MF as shipped: its key file holds external-auth key 00 = 16 x FF."""
    key = CardKey(key_id=0, type=EXTERNAL_AUTH, use=0xF0, change=0xF0, third=0x01,
                  fourth=0xFF, value=FACTORY_KEY)
    key_file = KeyFile(fid=0x0000, size=0x40, sfi=0x01, add_right=0xF1, keys={0: key})
    return DedicatedFile(fid=MF_FID, name=b"1PAY.SYS.DDF01", size=0x1E00, create_right=0xF0,
                         erase_right=0xF1, app_id=0xAA, key_file=key_file)


def fm1208_atr(uid: bytes) -> bytes:
    """The ATR a PC/SC contactless reader builds from an FM1208 ATS (PC/SC part 3 §3.1.3.2.3)."""
    historical = _HISTORICAL_PREFIX + uid[:4]
    body = bytes((0x80 | len(historical), 0x80, 0x01)) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes((tck,))


# --- CREATE FILE data -----------------------------------------------------------------------------


def parse_create(fid: int, data: bytes) -> DedicatedFile | KeyFile | ElementaryFile:
    """The file a CREATE FILE data field describes (type byte first; ``|80``/``|C0`` flags)."""
    if len(data) < 7:
        raise StatusWord(0x6700)
    kind = data[0] & 0x3F
    if kind == 0x38:
        return _parse_df(fid, data)
    if kind == 0x3F:
        size = _checked(int.from_bytes(data[1:3], "big"))
        return KeyFile(fid=fid, size=size, sfi=data[3], add_right=data[4])
    if kind in (BINARY, FIXED_RECORD):
        return _parse_ef(fid, data)
    raise StatusWord(0x6A80)


def _checked(size: int) -> int:
    if size == 0:
        raise StatusWord(0x6A80)
    return size


def _parse_df(fid: int, data: bytes) -> DedicatedFile:
    name = data[8:]
    if not 5 <= len(name) <= 16:
        raise StatusWord(0x6700)
    size = _checked(int.from_bytes(data[1:3], "big"))
    return DedicatedFile(fid=fid, name=name, size=size, create_right=data[3],
                         erase_right=data[4], app_id=data[5])


def _parse_ef(fid: int, data: bytes) -> ElementaryFile:
    kind, flags = data[0] & 0x3F, data[0] & 0xC0
    record_length = data[2] if kind == FIXED_RECORD else 0
    size = data[1] * data[2] if kind == FIXED_RECORD else int.from_bytes(data[1:3], "big")
    return ElementaryFile(fid=fid, type=kind, flags=flags, size=_checked(size),
                          read_right=data[3], write_right=data[4], data=bytearray(size),
                          record_length=record_length)


# --- image ---------------------------------------------------------------------------------------


def _b(value: int) -> str:
    return f"{value:02X}"


def _fid(value: int) -> str:
    return f"{value:04X}"


def _key_to_image(key: CardKey) -> dict[str, Any]:
    return {"id": key.key_id, "type": _b(key.type), "use": _b(key.use), "change": _b(key.change),
            "third": _b(key.third), "fourth": _b(key.fourth), "value": key.value.hex().upper(),
            "protected": key.protected}


def _key_from_image(raw: dict[str, Any]) -> CardKey:
    return CardKey(key_id=int(raw["id"]), type=int(raw["type"], 16), use=int(raw["use"], 16),
                   change=int(raw["change"], 16), third=int(raw["third"], 16),
                   fourth=int(raw["fourth"], 16), value=bytes.fromhex(raw["value"]),
                   protected=bool(raw["protected"]))


def _key_file_to_image(kf: KeyFile | None) -> dict[str, Any] | None:
    if kf is None:
        return None
    return {"fid": _fid(kf.fid), "size": kf.size, "sfi": _b(kf.sfi), "add": _b(kf.add_right),
            "keys": [_key_to_image(kf.keys[i]) for i in sorted(kf.keys)]}


def _key_file_from_image(raw: dict[str, Any] | None) -> KeyFile | None:
    if raw is None:
        return None
    keys = [_key_from_image(k) for k in raw["keys"]]
    return KeyFile(fid=int(raw["fid"], 16), size=int(raw["size"]), sfi=int(raw["sfi"], 16),
                   add_right=int(raw["add"], 16), keys={k.key_id: k for k in keys})


def _ef_to_image(ef: ElementaryFile) -> dict[str, Any]:
    return {"fid": _fid(ef.fid), "type": _b(ef.type), "flags": _b(ef.flags), "size": ef.size,
            "read": _b(ef.read_right), "write": _b(ef.write_right),
            "record_length": ef.record_length, "data": bytes(ef.data).hex().upper()}


def _ef_from_image(raw: dict[str, Any]) -> ElementaryFile:
    return ElementaryFile(fid=int(raw["fid"], 16), type=int(raw["type"], 16),
                          flags=int(raw["flags"], 16), size=int(raw["size"]),
                          read_right=int(raw["read"], 16), write_right=int(raw["write"], 16),
                          data=bytearray.fromhex(raw["data"]),
                          record_length=int(raw["record_length"]))


def df_to_image(df: DedicatedFile) -> dict[str, Any]:
    return {
        "fid": _fid(df.fid), "name": df.name.hex().upper(), "size": df.size,
        "create": _b(df.create_right), "erase": _b(df.erase_right), "app_id": _b(df.app_id),
        "key_file": _key_file_to_image(df.key_file),
        "efs": [_ef_to_image(df.efs[fid]) for fid in sorted(df.efs)],
        "dfs": [df_to_image(child) for child in df.dfs],
    }


def df_from_image(raw: dict[str, Any]) -> DedicatedFile:
    efs = [_ef_from_image(e) for e in raw["efs"]]
    return DedicatedFile(
        fid=int(raw["fid"], 16), name=bytes.fromhex(raw["name"]), size=int(raw["size"]),
        create_right=int(raw["create"], 16), erase_right=int(raw["erase"], 16),
        app_id=int(raw["app_id"], 16), key_file=_key_file_from_image(raw["key_file"]),
        efs={e.fid: e for e in efs}, dfs=[df_from_image(d) for d in raw["dfs"]],
    )
