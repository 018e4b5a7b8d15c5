"""An emulated NXP NTAG 424 DNA (NT4H2421Gx) plus the PC/SC reader it sits on.

Modelled: factory state; ISO SELECT / READ BINARY / UPDATE BINARY; native (ISO-wrapped ``90 ..``)
GetVersion, AuthenticateEV2First, GetKeyVersion, GetFileSettings, ChangeFileSettings (with SDM),
ChangeKey, GetCardUID, ReadData and WriteData in plain/MAC/FULL; SUN mirroring with a 24-bit
SDMReadCtr; failed-authentication counting with a persistent 91AD delay; command counter and TI;
the reader pseudo-APDU ``FF CA 00 00 00`` (UID). Protocol cryptography comes from
:mod:`cardsvc.cardcrypto`; the emulator only keeps state and applies access rules. The
non-volatile memory, its JSON image and the SUN mirror live in :mod:`cardsvc.emulator.ntag424_image`.

Tearing (``tear``): writes of at most 128 data bytes are atomic and modelled as *not applied*;
longer plain writes keep the 128-byte frames before the last; MAC/FULL writes are not applied;
ChangeKey and ChangeFileSettings are atomic and modelled as *applied* (the response is lost).
Volatile state (selection, session) is always lost.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto.ev2 import (
    CommMode,
    Ev2CardHandshake,
    SecureMessaging,
    parse_change_key_data,
)
from cardsvc.emulator.base import JsonImage
from cardsvc.emulator.ntag424_image import NtagFile, Nvm, Rng
from cardsvc.errors import CardIntegrityError, MalformedApdu
from cardsvc.profiles.ntag424 import FREE, FileSettings

ATR = bytes.fromhex("3B8180018080")
DF_NAME = bytes.fromhex("D2760000850101")
DF_ID = b"\xe1\x10"
VERSION_FRAMES = (bytes.fromhex("04040230001105"), bytes.fromhex("04040201021105"))
PRODUCTION = bytes.fromhex("BA7C4000001526")
ATOMIC_WRITE = 128
DELAY_AFTER = 3          # consecutive failures before 91AD delays start
TOT_FAIL_LIMIT = 1000    # NT4H2421Gx default TotFailCtrLimit
_MODES = {0x00: CommMode.plain, 0x01: CommMode.mac, 0x03: CommMode.full}
_HEADER_LEN = {0xAD: 7, 0x8D: 7, 0x5F: 1, 0xC4: 1, 0x64: 1, 0xF5: 1, 0x51: 0}

SW_OK, SW_NOT_FOUND, SW_SECURITY = b"\x90\x00", b"\x6a\x82", b"\x69\x82"
SW_WRONG_P, SW_WRONG_LEN, SW_INS, SW_CLA = b"\x6b\x00", b"\x67\x00", b"\x6d\x00", b"\x6e\x00"
OK, MORE, ILLEGAL, INTEGRITY, NO_KEY, LENGTH = 0x00, 0xAF, 0x1C, 0x1E, 0x40, 0x7E
DENIED, PARAM, DELAY, AUTH_ERROR, BOUNDARY, NO_FILE = 0x9D, 0x9E, 0xAD, 0xAE, 0xBE, 0xF0


class Ntag424Card:
    """One NTAG 424 DNA. Deterministic given ``rng`` (RndB, TI, PICCData padding)."""

    family = "ntag424"

    def __init__(self, nvm: Nvm, rng: Rng | None = None) -> None:
        self._nvm = nvm
        self._rng: Rng = rng or os.urandom
        self._app = False
        self._ef: int | None = None
        self._session: SecureMessaging | None = None
        self._auth_key: int | None = None
        self._pending: Callable[[bytes], bytes] | None = None
        self._sdm_view: bytes | None = None
        self._handlers: dict[tuple[int, int], Callable[[CommandApdu], bytes]] = {
            (0x00, 0xA4): self._select, (0x00, 0xB0): self._read_binary,
            (0x00, 0xD6): self._update_binary, (0xFF, 0xCA): self._get_data,
            (0x90, 0x60): self._get_version, (0x90, 0xAF): self._additional_frame,
            (0x90, 0x71): self._auth_first, (0x90, 0x64): self._get_key_version,
            (0x90, 0xF5): self._get_file_settings, (0x90, 0x5F): self._change_file_settings,
            (0x90, 0xC4): self._change_key, (0x90, 0x51): self._get_card_uid,
            (0x90, 0xAD): self._read_data, (0x90, 0x8D): self._write_data,
        }

    @classmethod
    def blank(cls, *, uid: bytes | None = None, rng: Rng | None = None) -> Ntag424Card:
        """A factory-fresh card; a random 7-byte NXP UID (04 …) unless ``uid`` is given."""
        draw = rng or os.urandom
        return cls(Nvm(uid=uid if uid is not None else b"\x04" + draw(6)), rng)

    @classmethod
    def from_image(cls, image: JsonImage, rng: Rng | None = None) -> Ntag424Card:
        """The card whose :meth:`to_image` was ``image``; KeyError/ValueError when malformed."""
        return cls(Nvm.from_image(image), rng)

    def to_image(self) -> JsonImage:
        return self._nvm.to_image()

    @property
    def atr(self) -> bytes:
        return ATR

    @property
    def uid(self) -> bytes:
        return self._nvm.uid

    def power_on(self) -> None:
        self._app, self._ef, self._pending, self._sdm_view = False, None, None, None
        self._drop_session()

    def process(self, apdu: bytes) -> bytes:
        try:
            command = CommandApdu.from_bytes(apdu)
        except MalformedApdu:
            return SW_WRONG_LEN
        handler = self._handlers.get((command.cla, command.ins))
        if handler is None:
            return SW_CLA if command.cla not in (0x00, 0x90, 0xFF) else SW_INS
        if command.ins != 0xAF:
            self._pending = None
        try:
            return handler(command)
        except _Reject as reject:
            return self._native(reject.rc)

    def tear(self, apdu: bytes) -> None:
        before, ef = copy.deepcopy(self._nvm), self._ef
        self.process(apdu)
        if apdu[:2] in (b"\x90\x8d", b"\x00\xd6"):
            try:
                command = CommandApdu.from_bytes(apdu)
            except MalformedApdu:
                command = None
            if command is None or not command.data:
                self._nvm = before  # the card rejected it: nothing was written
            else:
                self._tear_write(before, command, ef)
        self.power_on()

    def _tear_write(self, before: Nvm, c: CommandApdu, ef: int | None) -> None:
        """Undo a torn write, except the 128-byte frames of a longer plain write before the last."""
        after, self._nvm = self._nvm, before
        offset, length = ((c.p1 & 0x7F) << 8 | c.p2, len(c.data)) if c.ins == 0xD6 else _range(c.data)
        ef = ef if c.ins == 0xD6 else c.data[0]
        plain = c.ins == 0xD6 or len(c.data) == 7 + length
        keep = (length - 1) // ATOMIC_WRITE * ATOMIC_WRITE if plain else 0
        if keep and ef in after.files:
            before.files[ef].data[offset : offset + keep] = after.files[ef].data[offset : offset + keep]

    # --- reader and ISO commands -----------------------------------------------------------

    def _get_data(self, c: CommandApdu) -> bytes:
        return self._nvm.uid + SW_OK if (c.p1, c.p2) == (0, 0) else SW_WRONG_P

    def _select(self, c: CommandApdu) -> bytes:
        app = (c.p1 == 0x04 and c.data == DF_NAME) or (c.p1 in (0x00, 0x01) and c.data == DF_ID)
        if app or (c.p1 in (0x00, 0x02) and c.data == b"\x3f\x00"):  # the app, or back to the PICC
            self._app, self._ef, self._sdm_view = app, None, None
            self._drop_session()
            return SW_OK
        number = self._file_by_iso(c.data) if self._app and c.p1 in (0x00, 0x02) else None
        if number is None:
            return SW_NOT_FOUND
        self._ef, self._sdm_view = number, None
        return SW_OK

    def _file_by_iso(self, iso_id: bytes) -> int | None:
        return next((n for n, f in self._nvm.files.items() if f.iso_id == iso_id), None)

    def _iso_target(self, c: CommandApdu) -> tuple[int | None, int]:
        if not c.p1 & 0x80:
            return self._ef, (c.p1 << 8) | c.p2
        number = c.p1 & 0x1F  # short file identifier: selects the file
        if not self._app or number not in self._nvm.files:
            return None, 0
        if number != self._ef:
            self._ef, self._sdm_view = number, None
        return number, c.p2

    def _read_binary(self, c: CommandApdu) -> bytes:
        number, offset = self._iso_target(c)
        if number is None:
            return SW_NOT_FOUND
        file = self._nvm.files[number]
        if FREE not in (file.settings.access.read, file.settings.access.read_write):
            return SW_SECURITY
        if offset >= file.settings.size:
            return SW_WRONG_P
        if file.settings.sdm is None:
            content = bytes(file.data)
        else:  # one SUN mirror per selection: chunked reads see one consistent URL
            if self._sdm_view is None:
                self._sdm_view = self._nvm.mirrored(number, self._rng)
            content = self._sdm_view
        return content[offset : offset + (c.le or 256)] + SW_OK

    def _update_binary(self, c: CommandApdu) -> bytes:
        number, offset = self._iso_target(c)
        if number is None:
            return SW_NOT_FOUND
        file = self._nvm.files[number]
        rights = (file.settings.access.write, file.settings.access.read_write)
        by_key = self._auth_key in rights and not file.settings.comm_bits  # ISO commands are plain
        if FREE not in rights and not by_key:
            return SW_SECURITY
        if offset + len(c.data) > file.settings.size:
            return SW_WRONG_P
        file.data[offset : offset + len(c.data)] = c.data
        self._sdm_view = None
        return SW_OK

    # --- native commands -----------------------------------------------------------------

    def _native(self, rc: int, data: bytes = b"") -> bytes:
        if rc not in (OK, MORE):
            self._drop_session()  # any error ends an EV2 session
        return data + bytes((0x91, rc))

    def _drop_session(self) -> None:
        self._session, self._auth_key = None, None

    def _granted(self, *rights: int) -> str:
        """How an access is granted: "free" or "key" (the authenticated key); else 91 9D."""
        if FREE in rights:
            return "free"
        if self._auth_key is not None and self._auth_key in rights:
            return "key"
        raise _Reject(DENIED)

    def _open(self, c: CommandApdu, mode: CommMode) -> tuple[bytes, bytes]:
        """Header and plain data of a command, its MAC checked / data decrypted in a session."""
        header_len = _HEADER_LEN[c.ins]
        if len(c.data) < header_len:
            raise _Reject(LENGTH)
        if self._session is None or mode is CommMode.plain:
            return c.data[:header_len], c.data[header_len:]
        try:
            return self._session.open_command(c.ins, header_len, c.data, mode)
        except CardIntegrityError:
            raise _Reject(INTEGRITY) from None

    def _reply(self, data: bytes, mode: CommMode) -> bytes:
        if self._session is not None:
            data = self._session.protect_response(OK, data, mode)
        return self._native(OK, data)

    def _session_mode(self) -> CommMode:
        return CommMode.mac if self._session is not None else CommMode.plain

    def _file(self, number: int) -> NtagFile:
        if not self._app:
            raise _Reject(DENIED)
        if number not in self._nvm.files:
            raise _Reject(NO_FILE)
        return self._nvm.files[number]

    def _get_version(self, _c: CommandApdu) -> bytes:
        frames = [VERSION_FRAMES[1], self._nvm.uid + PRODUCTION]

        def more(_: bytes) -> bytes:
            frame = frames.pop(0)
            self._pending = more if frames else None
            return self._native(MORE if frames else OK, frame)

        self._pending = more
        return self._native(MORE, VERSION_FRAMES[0])

    def _additional_frame(self, c: CommandApdu) -> bytes:
        pending, self._pending = self._pending, None
        return pending(c.data) if pending else self._native(ILLEGAL)

    def _auth_first(self, c: CommandApdu) -> bytes:
        if not self._app:
            raise _Reject(DENIED)
        if len(c.data) < 2 or len(c.data) != 2 + c.data[1]:
            raise _Reject(LENGTH)
        key_no = _key_no(c.data[0])
        self._drop_session()
        if self._nvm.fail_total >= TOT_FAIL_LIMIT or self._nvm.delay > 0:
            self._nvm.delay = max(0, self._nvm.delay - 1)
            raise _Reject(DELAY)
        handshake = Ev2CardHandshake(self._nvm.keys[key_no], self._rng(16), self._rng(4))
        self._pending = lambda data: self._auth_second(handshake, key_no, data)
        return self._native(MORE, handshake.challenge())

    def _auth_second(self, handshake: Ev2CardHandshake, key_no: int, data: bytes) -> bytes:
        n = self._nvm
        try:
            reply, session = handshake.respond(data)
        except CardIntegrityError:
            n.fail_total, n.fail_run = n.fail_total + 1, n.fail_run + 1
            n.delay = max(0, n.fail_run - DELAY_AFTER + 1)
            return self._native(AUTH_ERROR)
        n.fail_run, n.fail_total = 0, max(0, n.fail_total - 10)
        self._session, self._auth_key = session, key_no
        return self._native(OK, reply)

    def _get_key_version(self, c: CommandApdu) -> bytes:
        header, _ = self._open(c, self._session_mode())
        if not self._app:
            raise _Reject(DENIED)
        return self._reply(bytes((self._nvm.versions[_key_no(header[0])],)), self._session_mode())

    def _get_file_settings(self, c: CommandApdu) -> bytes:
        header, _ = self._open(c, self._session_mode())
        return self._reply(self._file(header[0]).settings.to_bytes(), self._session_mode())

    def _get_card_uid(self, c: CommandApdu) -> bytes:
        if self._session is None:
            raise _Reject(AUTH_ERROR)
        self._open(c, CommMode.full)
        return self._reply(self._nvm.uid, CommMode.full)

    def _change_key(self, c: CommandApdu) -> bytes:
        if self._session is None or self._auth_key != 0:
            raise _Reject(AUTH_ERROR if self._session is None else DENIED)
        header, plain = self._open(c, CommMode.full)
        key_no = _key_no(header[0])
        old = None if key_no == self._auth_key else self._nvm.keys[key_no]
        try:
            new_key, version = parse_change_key_data(plain, old)
        except CardIntegrityError:
            raise _Reject(INTEGRITY) from None
        self._nvm.keys[key_no], self._nvm.versions[key_no] = new_key, version
        if old is None:  # the session key itself changed: the session ends, plain answer
            self._drop_session()
            return self._native(OK)
        return self._reply(b"", CommMode.mac)

    def _change_file_settings(self, c: CommandApdu) -> bytes:
        file = self._file(c.data[0] if c.data else -1)
        granted = self._granted(file.settings.access.change)
        _, raw = self._open(c, CommMode.full if granted == "key" else CommMode.plain)
        try:
            settings = FileSettings.parse_change(raw, file.settings.size)
        except (ValueError, IndexError):
            raise _Reject(PARAM) from None
        if settings.sdm is not None and settings.sdm != file.settings.sdm:
            self._nvm.sdm_ctr = 0
        file.settings = settings
        return self._reply(b"", CommMode.mac if granted == "key" else CommMode.plain)

    def _file_access(self, c: CommandApdu, write: bool) -> tuple[NtagFile, CommMode, str]:
        file = self._file(c.data[0] if c.data else -1)
        a = file.settings.access
        granted = self._granted(a.write if write else a.read, a.read_write)
        return file, _MODES[file.settings.comm_bits] if granted == "key" else CommMode.plain, granted

    def _read_data(self, c: CommandApdu) -> bytes:
        file, mode, granted = self._file_access(c, write=False)
        header, _ = self._open(c, CommMode.mac if mode is CommMode.full else mode)
        offset, length = _range(header)
        length = length or file.settings.size - offset
        if offset >= file.settings.size or offset + length > file.settings.size:
            raise _Reject(BOUNDARY)
        content = self._nvm.mirrored(header[0], self._rng) if granted == "free" else bytes(file.data)
        return self._reply(content[offset : offset + length], mode)

    def _write_data(self, c: CommandApdu) -> bytes:
        file, mode, _ = self._file_access(c, write=True)
        header, data = self._open(c, mode)
        offset, length = _range(header)
        if length != len(data) or length == 0:
            raise _Reject(LENGTH)
        if offset + length > file.settings.size:
            raise _Reject(BOUNDARY)
        file.data[offset : offset + length] = data
        return self._reply(b"", CommMode.mac if mode is not CommMode.plain else mode)


class _Reject(Exception):
    """A native command ends with status ``91 rc`` (caught in :meth:`Ntag424Card.process`)."""

    def __init__(self, rc: int) -> None:
        self.rc = rc


def _key_no(value: int) -> int:
    if value > 4:
        raise _Reject(NO_KEY)
    return value


def _range(header: bytes) -> tuple[int, int]:
    return int.from_bytes(header[1:4], "little"), int.from_bytes(header[4:7], "little")
