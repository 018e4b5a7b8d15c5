"""The ``[fmcos]`` table of a firmware profile: FMCOS 2.0 (FM1208 class) layout, keys and rights.

* :class:`FmcosConfig` — cipher suite, factory key, the MF and the application DF (ADF), the
  key slots by role and the data files by role, with their access-right bytes.
* :class:`KeySlot.derive` — the per-card key of a slot (NXP AN10922 over ``UID ‖ AID ‖ slot ‖ SI``),
  shared by the driver, the emulator tests and the verifier (which imports no driver).

Access-right bytes follow the FMCOS convention ``XY``: allowed when ``Y <= S <= X`` for the
current DF's security state ``S`` (``F0`` always, ``EF`` never). The byte values are an
ASSUMPTION until confirmed against the chip vendor's manual; the profile lists them.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from cardsvc.cardcrypto.an10922 import diversify_2tdea, diversify_aes128
from cardsvc.errors import CryptoError
from cardsvc.profiles.types import HexBytes

ALWAYS = 0xF0
NEVER = 0xEF
LENGTH_PREFIX = 2  # the credential file holds a 2-byte big-endian length, then the credential


def _parse_byte(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and len(value.strip()) == 2:
        try:
            number = int(value, 16)
        except ValueError as exc:
            raise ValueError(f"not a hex byte: {value!r}") from exc
    else:
        raise ValueError(f"expected a two-digit hex byte such as \"F0\", got {value!r}")
    if not 0 <= number <= 0xFF:
        raise ValueError(f"byte out of range: {value!r}")
    return number


HexByte = Annotated[int, BeforeValidator(_parse_byte)]


def _parse_fid(value: object) -> int:
    if isinstance(value, str) and len(value) == 4:
        try:
            return int(value, 16)
        except ValueError as exc:
            raise ValueError(f"not a hex file identifier: {value!r}") from exc
    raise ValueError(f"expected a 4-digit hex file identifier such as \"3F00\", got {value!r}")


Fid = Annotated[int, BeforeValidator(_parse_fid)]


def allows(right: int, state: int) -> bool:
    """The FMCOS access rule: right ``XY`` allows security state ``S`` when ``Y <= S <= X``."""
    return (right & 0x0F) <= state <= (right >> 4)


class KeyType(IntEnum):
    """FMCOS key type bytes (WRITE KEY data, first byte)."""

    internal_auth = 0x34
    line_protection = 0x36
    external_auth = 0x39


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeySlot(_Frozen):
    """One key in a DF's key file, its attributes, and the master-key role it is diversified from."""

    role: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    df: Literal["mf", "adf"]
    key_id: int = Field(ge=0, le=0xFF)
    type: Literal["external_auth", "internal_auth", "line_protection"]
    master_role: str
    use_right: HexByte = ALWAYS
    change_right: HexByte = ALWAYS
    follow_up: HexByte = 0x01  # external auth: the security state S reached on success
    error_counter: HexByte = 0x33  # limit ‖ remaining (nibbles); external auth and line protection
    algorithm_id: HexByte = 0x00  # internal auth

    @property
    def slot_byte(self) -> int:
        return self.key_id | (0x80 if self.df == "mf" else 0x00)

    @property
    def type_byte(self) -> int:
        return int(KeyType[self.type])

    def attributes(self, key_version: int) -> bytes:
        """The four attribute bytes WRITE KEY carries between the type byte and the key."""
        if self.type == "internal_auth":
            third, fourth = key_version & 0xFF, self.algorithm_id
        elif self.type == "external_auth":
            third, fourth = self.follow_up, self.error_counter
        else:
            third, fourth = 0xFF, self.error_counter
        return bytes((self.use_right, self.change_right, third, fourth))

    def derive(self, master_key: bytes, *, uid: bytes, aid: bytes, system_identifier: bytes,
               cipher_suite: str) -> bytes:
        """This slot's per-card key: AN10922 2TDEA for ``tdes``, AES-128 (ASSUMPTION) for ``sm4``.

        ``M = UID ‖ AID ‖ slot ‖ SI`` (slot = key id, | 80 in the MF, so two slots never share a
        key even under one master key); SI is cut to what AN10922 allows (M ≤ 15 bytes for
        2TDEA, ≤ 31 for AES): with a 4-byte UID the first 7 bytes of the system identifier count.
        """
        head = uid + aid + bytes((self.slot_byte,))
        if cipher_suite == "tdes":
            return diversify_2tdea(master_key, _m(head, system_identifier, _TDEA_MAX_M))
        if cipher_suite == "sm4":
            return diversify_aes128(master_key, _m(head, system_identifier, _AES_MAX_M))
        raise CryptoError(f"no key diversification for cipher suite {cipher_suite!r}")


_TDEA_MAX_M = 15
_AES_MAX_M = 31


def _m(head: bytes, system_identifier: bytes, limit: int) -> bytes:
    if len(head) >= limit:
        raise CryptoError(f"UID and AID leave no room in the {limit}-byte diversification input")
    return head + system_identifier[: limit - len(head)]


class DataFile(_Frozen):
    """One binary EF of the application by role."""

    role: Literal["card_number", "credential", "status"]
    fid: Fid
    size: int = Field(ge=1, le=0x7FFF)
    read_right: HexByte = ALWAYS
    write_right: HexByte = 0xF1
    protection: Literal["none", "mac", "mac_enc"] = "none"


class DfLayout(_Frozen):
    """A DF (the MF or the application) and its key file."""

    fid: Fid
    df_name: HexBytes = b""
    size: int = Field(default=0x0400, ge=0x20, le=0x7FFF)
    create_right: HexByte = 0xF1
    erase_right: HexByte = 0xF1
    app_id: HexByte = 0x95
    key_file_fid: Fid = 0x0000
    key_file_size: int = Field(default=0x0040, ge=0x10, le=0x0400)
    key_file_sfi: HexByte = 0x01
    key_file_add_right: HexByte = 0xF1

    @model_validator(mode="after")
    def _name_fits(self) -> DfLayout:
        if self.df_name and not 5 <= len(self.df_name) <= 16:
            raise ValueError("df_name must be 5..16 bytes")
        return self


class FmcosConfig(_Frozen):
    """Everything the FMCOS driver needs to know about one card product."""

    cipher_suite: Literal["tdes", "sm4"] = "tdes"
    factory_key: HexBytes = b"\xff" * 16
    diversification_aid: HexBytes = b"\xf0\x10\x01"
    mf: DfLayout
    application: DfLayout
    keys: list[KeySlot] = Field(min_length=1)
    files: list[DataFile] = Field(min_length=3)

    @model_validator(mode="after")
    def _consistent(self) -> FmcosConfig:
        self._check_keys()
        self._check_files()
        if not self.application.df_name:
            raise ValueError("application.df_name is required (the ADF is selected by name)")
        if len(self.factory_key) != 16 or len(self.diversification_aid) != 3:
            raise ValueError("factory_key must be 16 bytes and diversification_aid 3 bytes")
        return self

    def _check_keys(self) -> None:
        roles = [k.role for k in self.keys]
        if len(set(roles)) != len(roles):
            raise ValueError("key slot roles must be unique")
        for df in ("mf", "adf"):
            ids = [k.key_id for k in self.keys if k.df == df]
            if len(set(ids)) != len(ids):
                raise ValueError(f"key ids in {df} must be unique")
        for role in ("mf_admin", "app_admin", "internal_auth", "line_protection"):
            if role not in roles:
                raise ValueError(f"key slot {role!r} is required")
        for role, df in (("mf_admin", "mf"), ("app_admin", "adf")):
            slot = self.key(role)
            if (slot.df, slot.type, slot.key_id) != (df, "external_auth", 0):
                raise ValueError(f"{role} must be the external-auth key 00 of the {df}")

    def _check_files(self) -> None:
        roles = [f.role for f in self.files]
        if sorted(roles) != ["card_number", "credential", "status"]:
            raise ValueError("files must be exactly card_number, credential and status")
        fids = [f.fid for f in self.files] + [self.application.key_file_fid]
        if len(set(fids)) != len(fids):
            raise ValueError("file identifiers in the application must be unique")
        if self.file("credential").size < LENGTH_PREFIX + 64:
            raise ValueError("the credential file must hold a 2-byte length and >= 64 bytes")

    def key(self, role: str) -> KeySlot:
        return next(k for k in self.keys if k.role == role)

    def file(self, role: str) -> DataFile:
        return next(f for f in self.files if f.role == role)

    def keys_in(self, df: Literal["mf", "adf"]) -> list[KeySlot]:
        return [k for k in self.keys if k.df == df]

    def card_key(self, role: str, master_key: bytes, *, uid: bytes,
                 system_identifier: bytes) -> bytes:
        """The per-card key of slot ``role`` — what a verifier needs to check a card's proof:
        ``verify_internal_auth(suite(cfg.cipher_suite), cfg.card_key("internal_auth", …), …)``."""
        return self.key(role).derive(master_key, uid=uid, aid=self.diversification_aid,
                                     system_identifier=system_identifier,
                                     cipher_suite=self.cipher_suite)
