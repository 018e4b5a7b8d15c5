"""FMCOS command layer: builds each command with :class:`CommandApdu`, moves it over a
:class:`CardConnection`, and judges every answer with :data:`FMCOS_SW` — the family's status-word
table for the one shared checker in :mod:`cardsvc.drivers._sw`. Nothing above compares status
words. Key material, cryptograms and challenges are never logged; the trace names the command and
the status word only.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto import fmcos as fc
from cardsvc.drivers._sw import Meaning, StatusTable, exchange
from cardsvc.errors import CardIntegrityError
from cardsvc.profiles.fmcos import DataFile, DfLayout, KeySlot
from cardsvc.transport.base import CardConnection

_PROTECTION_FLAGS = {"none": 0x00, "mac": 0x80, "mac_enc": 0xC0}
_PROTECTED_KEY = 0xC0  # key type flag: updates of this key must be ciphertext + MAC


# FMCOS 2.0 manual status words (ISO/IEC 7816-4 meanings; 63Cx = wrong key, x tries left)
FMCOS_SW = StatusTable({
    0x9000: Meaning.ok,
    0x6983: Meaning.delay,
    0x6A82: Meaning.not_found, 0x6A88: Meaning.not_found,
    0x6982: Meaning.denied,
    0x6988: Meaning.integrity,
}, retry_counter=True)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What WRITE KEY writes: type byte, the four attribute bytes, and the key value."""

    type: int
    key_id: int
    attributes: bytes
    value: bytes

    @classmethod
    def for_slot(cls, slot: KeySlot, value: bytes, key_version: int) -> KeyRecord:
        return cls(slot.type_byte, slot.key_id, slot.attributes(key_version), value)

    def body(self, flags: int = 0x00) -> bytes:
        return bytes((self.type | flags,)) + self.attributes + self.value

    def __repr__(self) -> str:  # never show key material
        return f"KeyRecord(type={self.type:02X}, key_id={self.key_id})"


def df_create_data(layout: DfLayout) -> bytes:
    return (bytes((0x38,)) + layout.size.to_bytes(2, "big")
            + bytes((layout.create_right, layout.erase_right, layout.app_id, 0xFF, 0xFF))
            + layout.df_name)


def key_file_create_data(layout: DfLayout) -> bytes:
    return (bytes((0x3F,)) + layout.key_file_size.to_bytes(2, "big")
            + bytes((layout.key_file_sfi, layout.key_file_add_right, 0xFF, 0xFF)))


def ef_create_data(spec: DataFile) -> bytes:
    kind = 0x28 | _PROTECTION_FLAGS[spec.protection]
    return (bytes((kind,)) + spec.size.to_bytes(2, "big")
            + bytes((spec.read_right, spec.write_right, 0xFF, 0xFF)))


class FmcosSession:
    """One conversation with an FMCOS card over an open connection."""

    def __init__(self, conn: CardConnection, cs: fc.BlockCipherSuite) -> None:
        self.conn = conn
        self.cs = cs

    def run(self, apdu: CommandApdu, what: str, fid: str = "") -> bytes:
        response = exchange(self.conn, apdu, what)
        FMCOS_SW.check(response.sw, what, fid=fid)
        return response.data

    # --- selection and reading (free commands) ---------------------------------------------------

    def uid(self) -> bytes:
        return self.run(CommandApdu(0xFF, 0xCA, 0x00, 0x00, le=256), "GET DATA (UID)")

    def select_fid(self, fid: int, what: str) -> bytes:
        return self.run(CommandApdu(0x00, 0xA4, 0x00, 0x00, fid.to_bytes(2, "big")),
                        f"SELECT {what}", f"{fid:04X}")

    def select_name(self, name: bytes, what: str) -> bytes:
        return self.run(CommandApdu(0x00, 0xA4, 0x04, 0x00, name), f"SELECT {what}", name.hex())

    def read_binary(self, length: int, what: str, offset: int = 0, *, sfi: int | None = None) -> bytes:
        """From the current EF, or (``sfi``) from that EF of the current DF, which it selects."""
        return self.run(CommandApdu(0x00, 0xB0, *_p1p2(offset, sfi), le=length), f"READ BINARY {what}")

    # --- authentication --------------------------------------------------------------------------

    def challenge(self, length: int) -> bytes:
        """A fresh card challenge of exactly ``length`` bytes (a short one would waste a try)."""
        challenge = self.run(CommandApdu(0x00, 0x84, 0x00, 0x00, le=length), "GET CHALLENGE")
        if len(challenge) != length:
            raise CardIntegrityError(f"GET CHALLENGE answered {len(challenge)} bytes, not {length}")
        return challenge

    def external_auth(self, key_id: int, key: bytes, what: str) -> None:
        challenge = self.challenge(8)
        cryptogram = fc.auth_cryptogram(self.cs, key, challenge)
        self.run(CommandApdu(0x00, 0x82, 0x00, key_id, cryptogram), f"EXTERNAL AUTHENTICATE {what}",
                 f"key {key_id:02X}")

    def internal_auth(self, key_id: int, challenge: bytes) -> bytes:
        return self.run(CommandApdu(0x00, 0x88, 0x00, key_id, challenge, le=256),
                        "INTERNAL AUTHENTICATE", f"key {key_id:02X}")

    # --- file system management ------------------------------------------------------------------

    def erase_df(self) -> None:
        self.run(CommandApdu(0x80, 0x0E, 0x00, 0x00), "ERASE DF")

    def create_file(self, fid: int, data: bytes, what: str) -> None:
        self.run(CommandApdu(0x80, 0xE0, fid >> 8, fid & 0xFF, data), f"CREATE FILE {what}",
                 f"{fid:04X}")

    def install_key(self, record: KeyRecord, what: str) -> None:
        """Plain WRITE KEY install; the C0 type flag makes later updates line-protected only."""
        self.run(CommandApdu(0x80, 0xD4, 0x01, record.key_id, record.body(_PROTECTED_KEY)),
                 f"WRITE KEY {what}")

    def write_key_protected(self, master: bytes, record: KeyRecord, what: str, *,
                            update: bool) -> None:
        """WRITE KEY with CLA 84: ciphertext + MAC under the DF master key (external-auth key 00)."""
        p1 = record.type if update else 0x01
        body = record.body(_PROTECTED_KEY)
        plain = CommandApdu(0x80, 0xD4, p1, record.key_id, fc.encrypt_line(self.cs, master, body))
        challenge = self.challenge(4)
        self.run(fc.protect(self.cs, master, plain, challenge), f"WRITE KEY {what}")

    def update_binary(self, data: bytes, what: str, offset: int = 0, *, sfi: int | None = None) -> None:
        self.run(CommandApdu(0x00, 0xD6, *_p1p2(offset, sfi), data), f"UPDATE BINARY {what}")

    def update_binary_protected(self, line_key: bytes, data: bytes, what: str, *,
                                encrypt: bool = False, sfi: int | None = None) -> None:
        body = fc.encrypt_line(self.cs, line_key, data) if encrypt else data
        challenge = self.challenge(4)
        plain = CommandApdu(0x00, 0xD6, *_p1p2(0, sfi), body)
        self.run(fc.protect(self.cs, line_key, plain, challenge), f"UPDATE BINARY {what}")

    def read_binary_protected(self, line_key: bytes, length: int, what: str, *,
                              decrypt: bool = False, sfi: int | None = None) -> bytes:
        """READ BINARY with CLA 04: the answer carries a MAC under the line-protection key."""
        challenge = self.challenge(4)
        command = fc.protect(self.cs, line_key, CommandApdu(0x00, 0xB0, *_p1p2(0, sfi), le=length),
                             challenge)
        response = self.run(command, f"READ BINARY {what}")
        data = fc.verify_response_mac(self.cs, line_key, response, challenge)
        return fc.decrypt_line(self.cs, line_key, data) if decrypt else data


def short_file_id(fid: int) -> int:
    """An FMCOS EF's short file identifier: the low 5 bits of its FID (1..30)."""
    sfi = fid & 0x1F
    if not 0 < sfi < 0x1F:
        raise ValueError(f"EF {fid:04X} has no usable short file identifier")
    return sfi


def _p1p2(offset: int, sfi: int | None) -> tuple[int, int]:
    """READ/UPDATE BINARY P1 P2: a 15-bit offset in the current EF, or ``1 0 0 SFI ‖ 8-bit offset``."""
    if sfi is None:
        return offset >> 8, offset & 0xFF
    if not 0 < sfi < 0x1F or not 0 <= offset <= 0xFF:
        raise ValueError("short file identifier 1..30 with an offset 0..255")
    return 0x80 | sfi, offset
