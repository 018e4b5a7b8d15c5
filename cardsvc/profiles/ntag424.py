"""The ``[ntag424]`` table of a firmware profile, and the NTAG 424 DNA file-settings codec.

Every field has the NT4H2421Gx default so a profile states only what it changes (our profile
states everything, for the reader's sake). Bytes in code, hex in the file.

* :class:`Ntag424Config` — application DF name, the three files (factory and personalised access
  rights), key slots by role, SUN/SDM settings, and where the card record lives.
* :class:`KeySlot.derive` — the per-card key of a slot (AN10922 AES-128), shared by the driver,
  the emulator tests and the verifier (which imports no driver); :class:`SlotDeriver` is the same
  with the master key prepared once (the verifier's hot path).
* :class:`FileSettings` — the ``GetFileSettings`` / ``ChangeFileSettings`` byte layout
  (NT4H2421Gx §10.7.1–§10.7.2), incl. SDM options and offsets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cardsvc.cardcrypto.an10922 import AesDiversifier, diversify_aes128
from cardsvc.cardcrypto.sun import MAC_HEX_LEN, PICC_HEX_LEN, SunReading, parse_sun_url, verify_sun
from cardsvc.errors import CryptoError, KeyStoreError
from cardsvc.profiles.types import HexBytes

FREE = 0xE
NEVER = 0xF
Access = int | Literal["free", "never"]
CommModeName = Literal["plain", "mac", "full"]
COMM_BITS = {"plain": 0x00, "mac": 0x01, "full": 0x03}
SDM_ENABLED = 0x40
SDM_UID_MIRROR = 0x80
SDM_CTR_MIRROR = 0x40
SDM_CTR_LIMIT = 0x20
SDM_ENC_FILE = 0x10
SDM_ASCII = 0x01


def access_nibble(value: Access) -> int:
    """A profile access value as the chip's nibble: key 0..4, ``E`` free, ``F`` never."""
    if value == "free":
        return FREE
    if value == "never":
        return NEVER
    return int(value)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccessSpec(_Frozen):
    """Access rights of one file: a key slot number 0..4, ``"free"`` or ``"never"``."""

    read: Access = "free"
    write: Access = "free"
    read_write: Access = "free"
    change: Access = 0

    @model_validator(mode="after")
    def _in_range(self) -> AccessSpec:
        for value in (self.read, self.write, self.read_write, self.change):
            if isinstance(value, int) and not 0 <= value <= 4:
                raise ValueError("a key slot must be 0..4")
        return self

    def rights(self) -> AccessRights:
        return AccessRights(read=access_nibble(self.read), write=access_nibble(self.write),
                            read_write=access_nibble(self.read_write),
                            change=access_nibble(self.change))


class FileSpec(_Frozen):
    """One standard data file: number, ISO file id, size, and access before/after personalisation."""

    number: int = Field(ge=1, le=3)
    iso_id: HexBytes
    size: int = Field(ge=1, le=256)
    comm_mode: CommModeName = "plain"
    access: AccessSpec = AccessSpec()
    factory_comm_mode: CommModeName = "plain"
    factory_access: AccessSpec = AccessSpec()


class KeySlot(_Frozen):
    """A card key: its slot, what it is for, the master-key role it is diversified from."""

    slot: int = Field(ge=0, le=4)
    role: str
    master: str
    uid_diversified: bool = True

    def derive(self, master_key: bytes, *, uid: bytes, aid: bytes, system_identifier: bytes) -> bytes:
        """AN10922 AES-128 with ``M = [UID] ‖ AID ‖ slot ‖ SystemIdentifier``.

        The UID is left out for system-wide keys (``K_SDMMetaRead`` must decrypt PICCData before
        the UID is known).
        """
        m = (uid if self.uid_diversified else b"") + aid + bytes((self.slot,)) + system_identifier
        if len(m) > 31:
            raise CryptoError("system identifier too long for AN10922 AES (M is at most 31 bytes)")
        return diversify_aes128(master_key, m)

    def deriver(self, master_key: bytes, *, aid: bytes, system_identifier: bytes) -> SlotDeriver:
        """:meth:`derive` for one master key, AID and system identifier, prepared once."""
        suffix = aid + bytes((self.slot,)) + system_identifier
        return SlotDeriver(AesDiversifier(master_key), suffix, uid_diversified=self.uid_diversified)


class SlotDeriver:
    """:meth:`KeySlot.derive` with the master key prepared (its cipher and CMAC subkeys made once)
    and ``AID ‖ slot ‖ SystemIdentifier`` joined once: a card key is two AES block operations.
    Results and errors equal :meth:`KeySlot.derive`'s; safe to share between threads."""

    __slots__ = ("_diversifier", "_suffix", "_uid_diversified")

    def __init__(self, diversifier: AesDiversifier, suffix: bytes, *, uid_diversified: bool) -> None:
        self._diversifier, self._suffix, self._uid_diversified = diversifier, suffix, uid_diversified

    def __repr__(self) -> str:
        return "SlotDeriver(<key hidden>)"

    def derive(self, uid: bytes) -> bytes:
        m = uid + self._suffix if self._uid_diversified else self._suffix
        if len(m) > 31:
            raise CryptoError("system identifier too long for AN10922 AES (M is at most 31 bytes)")
        return self._diversifier.diversify(m)


class SunSpec(_Frozen):
    """Secure Dynamic Messaging on the NDEF file: the phone-tap URL and the keys that sign it."""

    picc_param: str = "p"
    mac_param: str = "m"
    meta_read_key: int = Field(default=1, ge=0, le=4)
    file_read_key: int = Field(default=2, ge=0, le=4)
    counter_retrieval: Access = "never"


class IdentifySpec(_Frozen):
    """What ``GetVersion``'s first frame must say (the ATR is shared with other type-4 tags)."""

    vendor_id: int = Field(default=0x04, ge=0, le=255)
    hw_type: int = Field(default=0x04, ge=0, le=255)


class RecordSpec(_Frozen):
    """Where the card record (card number, credential length) sits in the NDEF file's tail."""

    offset: int = Field(default=192, ge=128, le=240)


def _default_files() -> dict[str, FileSpec]:
    locked = AccessSpec(read="free", write=0, read_write=0, change=0)
    return {
        "cc": FileSpec(number=1, iso_id=b"\xe1\x03", size=32, access=locked),
        "ndef": FileSpec(number=2, iso_id=b"\xe1\x04", size=256, access=locked),
        "data": FileSpec(number=3, iso_id=b"\xe1\x05", size=128, comm_mode="full",
                         access=AccessSpec(read=3, write=0, read_write=0, change=0),
                         factory_comm_mode="full",
                         factory_access=AccessSpec(read=2, write=3, read_write=3, change=0)),
    }


def _default_keys() -> list[KeySlot]:
    return [
        KeySlot(slot=0, role="app_master", master="ntag424_app_master"),
        KeySlot(slot=1, role="sdm_meta_read", master="ntag424_sdm_meta_read", uid_diversified=False),
        KeySlot(slot=2, role="sdm_file_read", master="ntag424_sdm_file_read"),
        KeySlot(slot=3, role="data_read", master="ntag424_data_read"),
        KeySlot(slot=4, role="reserve", master="ntag424_reserve"),
    ]


class Ntag424Config(_Frozen):
    """NTAG 424 DNA layout, keys and SUN settings of one product."""

    df_name: HexBytes = b"\xd2\x76\x00\x00\x85\x01\x01"
    iso_df_id: HexBytes = b"\xe1\x10"
    diversification_aid: HexBytes = b"\x42\x4e\x41"
    identify: IdentifySpec = IdentifySpec()
    files: dict[str, FileSpec] = Field(default_factory=_default_files)
    keys: list[KeySlot] = Field(default_factory=_default_keys)
    sun: SunSpec = SunSpec()
    record: RecordSpec = RecordSpec()

    @model_validator(mode="after")
    def _consistent(self) -> Ntag424Config:
        if sorted(self.files) != ["cc", "data", "ndef"]:
            raise ValueError("files must be exactly cc, ndef and data")
        if sorted(k.slot for k in self.keys) != [0, 1, 2, 3, 4]:
            raise ValueError("keys must name each slot 0..4 once")
        if self.slot(self.sun.meta_read_key).uid_diversified:
            raise ValueError("the SDM meta-read key cannot be UID-diversified: it reveals the UID")
        if len(self.diversification_aid) != 3:
            raise ValueError("diversification_aid must be 3 bytes")
        if not isinstance(self.files["data"].access.read, int):
            raise ValueError("the data file's read access must be a key slot (it holds the credential)")
        return self

    def slot(self, number: int) -> KeySlot:
        return next(k for k in self.keys if k.slot == number)

    def slot_for_role(self, role: str) -> KeySlot:
        for key in self.keys:
            if key.role == role:
                return key
        raise KeyError(role)

    def card_key(self, number: int, master_keys: Mapping[str, bytes], *, uid: bytes,
                 system_identifier: bytes) -> bytes:
        """The per-card key of slot ``number`` from a master-key-role → master-key mapping."""
        slot, master = self._master(number, master_keys)
        return slot.derive(master, uid=uid, aid=self.diversification_aid,
                           system_identifier=system_identifier)

    def card_key_deriver(self, number: int, master_keys: Mapping[str, bytes], *,
                         system_identifier: bytes) -> SlotDeriver:
        """:meth:`card_key` of slot ``number`` prepared once: ``.derive(uid)`` gives a card's key."""
        slot, master = self._master(number, master_keys)
        return slot.deriver(master, aid=self.diversification_aid, system_identifier=system_identifier)

    def _master(self, number: int, master_keys: Mapping[str, bytes]) -> tuple[KeySlot, bytes]:
        slot = self.slot(number)
        master = master_keys.get(slot.master)
        if master is None:
            raise KeyStoreError(f"no card master key for role {slot.master!r} (key slot {number})",
                                hint="create the profile's card master keys: cardsvc card-keys create")
        return slot, master

    def verify_sun_url(self, url: str, master_keys: Mapping[str, bytes], *,
                       system_identifier: bytes) -> SunReading:
        """Verify a tapped URL of a card personalised with this profile (no reader, no driver).

        Raises ``MalformedCredential`` / ``CardIntegrityError``; the caller still has to check
        that the counter grew (replay) and that the UID belongs to an issued card.
        """
        message = parse_sun_url(url, picc_param=self.sun.picc_param, mac_param=self.sun.mac_param)
        meta = self.card_key(self.sun.meta_read_key, master_keys, uid=b"",
                             system_identifier=system_identifier)

        def file_read_key(uid: bytes) -> bytes:
            return self.card_key(self.sun.file_read_key, master_keys, uid=uid,
                                 system_identifier=system_identifier)

        return verify_sun(message, meta_read_key=meta, file_read_key=file_read_key)


# --- GetFileSettings / ChangeFileSettings -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessRights:
    """The four access-condition nibbles of a file."""

    read: int
    write: int
    read_write: int
    change: int

    def to_bytes(self) -> bytes:
        return bytes(((self.read_write << 4) | self.change, (self.read << 4) | self.write))

    @classmethod
    def from_bytes(cls, raw: bytes) -> AccessRights:
        return cls(read=raw[1] >> 4, write=raw[1] & 0xF, read_write=raw[0] >> 4, change=raw[0] & 0xF)


@dataclass(frozen=True, slots=True)
class SdmSettings:
    """SDM options, SDM access rights (keys) and mirror offsets (from the start of the file)."""

    options: int
    meta_read: int
    file_read: int
    counter_retrieval: int
    picc_offset: int = 0
    uid_offset: int = 0
    ctr_offset: int = 0
    mac_input_offset: int = 0
    enc_offset: int = 0
    enc_length: int = 0
    mac_offset: int = 0

    def to_bytes(self) -> bytes:
        ar = bytes((0xF0 | self.counter_retrieval, (self.meta_read << 4) | self.file_read))
        return bytes((self.options,)) + ar + b"".join(o.to_bytes(3, "little") for o in self._offsets())

    def _offsets(self) -> list[int]:
        return [getattr(self, name) for name in self.offset_fields(self.options, self.meta_read,
                                                                    self.file_read)]

    @staticmethod
    def offset_fields(options: int, meta_read: int, file_read: int) -> list[str]:
        """Which offsets follow the SDM access rights, in wire order (NT4H2421Gx Table 73)."""
        names: list[str] = []
        if meta_read == FREE:
            names += ["uid_offset"] if options & SDM_UID_MIRROR else []
            names += ["ctr_offset"] if options & SDM_CTR_MIRROR else []
        elif meta_read <= 4:
            names.append("picc_offset")
        if file_read != NEVER:
            names.append("mac_input_offset")
            names += ["enc_offset", "enc_length"] if options & SDM_ENC_FILE else []
            names.append("mac_offset")
        return names

    @classmethod
    def parse(cls, raw: bytes) -> tuple[SdmSettings, int]:
        """Parse from the start of ``raw``; returns the settings and the bytes consumed."""
        if len(raw) < 3:
            raise ValueError("SDM settings truncated")
        options, meta, file_read, ctr = raw[0], raw[2] >> 4, raw[2] & 0xF, raw[1] & 0xF
        names = cls.offset_fields(options, meta, file_read)
        end = 3 + 3 * len(names)
        if len(raw) < end:
            raise ValueError("SDM offsets truncated")
        values = {n: int.from_bytes(raw[3 + 3 * i : 6 + 3 * i], "little") for i, n in enumerate(names)}
        return cls(options=options, meta_read=meta, file_read=file_read, counter_retrieval=ctr,
                   **values), end


@dataclass(frozen=True, slots=True)
class FileSettings:
    """What ``GetFileSettings`` returns for a standard data file (FileType 00)."""

    comm_bits: int
    access: AccessRights
    size: int
    sdm: SdmSettings | None = None

    def change_bytes(self) -> bytes:
        """The ``ChangeFileSettings`` data after FileNo: FileOption ‖ AccessRights ‖ [SDM]."""
        option = self.comm_bits | (SDM_ENABLED if self.sdm else 0)
        sdm = self.sdm.to_bytes() if self.sdm else b""
        return bytes((option,)) + self.access.to_bytes() + sdm

    def to_bytes(self) -> bytes:
        """The ``GetFileSettings`` response: FileType ‖ FileOption ‖ AR ‖ Size(3, LE) ‖ [SDM]."""
        head = self.change_bytes()
        return b"\x00" + head[:3] + self.size.to_bytes(3, "little") + head[3:]

    @classmethod
    def parse_change(cls, raw: bytes, size: int) -> FileSettings:
        """Parse ``ChangeFileSettings`` data (after FileNo); ValueError when malformed."""
        if len(raw) < 3 or raw[0] & ~(SDM_ENABLED | 0x03):
            raise ValueError("file option or access rights malformed")
        sdm = None
        if raw[0] & SDM_ENABLED:
            sdm, used = SdmSettings.parse(raw[3:])
            if 3 + used != len(raw):
                raise ValueError("trailing bytes after SDM settings")
        elif len(raw) != 3:
            raise ValueError("trailing bytes after access rights")
        if sdm is not None:
            _check_mirrors(sdm, size)
        return cls(comm_bits=raw[0] & 0x03, access=AccessRights.from_bytes(raw[1:3]), size=size, sdm=sdm)

    @classmethod
    def parse(cls, raw: bytes) -> FileSettings:
        """Parse a ``GetFileSettings`` response; ValueError when malformed."""
        if len(raw) < 7 or raw[0] != 0:
            raise ValueError("not a standard data file's settings")
        size = int.from_bytes(raw[4:7], "little")
        return cls.parse_change(raw[1:4] + raw[7:], size)


def _check_mirrors(sdm: SdmSettings, size: int) -> None:
    """The mirrors a card would write must lie inside the file (the chip answers PARAMETER_ERROR)."""
    if sdm.meta_read <= 4 and sdm.picc_offset + PICC_HEX_LEN > size:
        raise ValueError("PICCData mirror outside the file")
    if sdm.meta_read == FREE and max(sdm.uid_offset + 14, sdm.ctr_offset + 6) > size:
        raise ValueError("UID or counter mirror outside the file")
    if sdm.file_read <= 4 and not sdm.mac_input_offset <= sdm.mac_offset <= size - MAC_HEX_LEN:
        raise ValueError("SDMMAC mirror outside the file")
