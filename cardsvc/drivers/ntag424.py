"""NTAG 424 DNA driver: status probe, resumable personalisation, read-back and SUN proof.

Personalisation order (all under one session with factory key 0, which stays factory until the
very last command, so every earlier step can be redone after a tear):

1. file 03 settings (FULL, read key 3), credential into file 03 (one atomic ≤ 128-byte write);
2. NDEF URL with SUN placeholders, then the card record in the NDEF file's tail;
3. NDEF file settings (SDM on: PICCData + SDMMAC mirrors), CC file locked;
4. ChangeKey for slots 4, 3, 2, 1 (a slot whose version already is the target is skipped);
5. check what a verifier will check — the data_read key reads the chip's UID and file 03, one read
   of the NDEF file gives the card record and a SUN that verifies with the SDM keys — and only
   then 6. ChangeKey slot 0: the point of no return. What step 5 read from the card is the read-back
   (key 0 is the only thing that changes after it; issuance reads the card back once more anyway).

Every APDU costs a real reader 15–60 ms, so none is sent in vain: while key 0 is factory,
personalisation tells factory from partial by the key versions alone (both are completed the same
way, every file's settings and data rewritten), without the status probe's GetFileSettings and
NDEF-content reads; and step 5 reads the NDEF file with one READ BINARY by short file identifier.

Status words become errors through :data:`NTAG424_SW` only; nothing above compares SWs.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from cardsvc.apdu import CommandApdu
from cardsvc.cardcrypto import sun
from cardsvc.cardcrypto.ev2 import CommMode, Ev2Authenticator, SecureMessaging, change_key_data
from cardsvc.drivers._keys import check_master_keys
from cardsvc.drivers._sw import Meaning, StatusTable, exchange
from cardsvc.drivers.base import (
    CardProof,
    CardReadout,
    CardState,
    MasterKeys,
    PersonalisationPlan,
    ProgressCallback,
    StatusReport,
)
from cardsvc.drivers.ntag424_ndef import (
    card_record,
    ndef_content,
    parse_card_record,
    parse_uri_message,
    sdm_settings,
)
from cardsvc.errors import (
    CardIntegrityError,
    CardSpoiled,
    ConfigError,
    UnknownCard,
    WrongKey,
)
from cardsvc.profiles import Profile
from cardsvc.profiles.ntag424 import (
    COMM_BITS,
    FileSettings,
    FileSpec,
    Ntag424Config,
    SdmSettings,
)
from cardsvc.transport.base import CardConnection

log = logging.getLogger(__name__)
Rng = Callable[[int], bytes]

FACTORY_KEY = bytes(16)
_FRAME = 128

# NT4H2421Gx §10.2 (native status codes, ISO-wrapped as 91xx) and ISO/IEC 7816-4 for 6Axx/69xx
NTAG424_SW = StatusTable({
    0x9000: Meaning.ok, 0x9100: Meaning.ok, 0x91AF: Meaning.more,
    0x91AE: Meaning.wrong_key, 0x91AD: Meaning.delay,
    0x6A82: Meaning.not_found, 0x91F0: Meaning.not_found, 0x9140: Meaning.not_found,
    0x6982: Meaning.denied, 0x919D: Meaning.denied,
    0x911E: Meaning.integrity,
})


@dataclass(frozen=True, slots=True)
class _Probe:
    uid: bytes
    versions: tuple[int, ...]
    settings: dict[int, FileSettings] | None  # None: not read (personalisation, key 0 factory)


class Ntag424Driver:
    """The :class:`~cardsvc.drivers.base.CardDriver` for the ``ntag424`` family."""

    def __init__(self, profile: Profile, *, rng: Rng | None = None) -> None:
        if not isinstance(profile.config, Ntag424Config):
            raise ConfigError(f"profile {profile.name!r} is not an ntag424 profile")
        self.profile = profile
        self.cfg: Ntag424Config = profile.config
        self._rng: Rng = rng or os.urandom

    # --- moving bytes; status words become errors in drivers._sw only ------------------------

    def _transmit(self, conn: CardConnection, apdu: CommandApdu, what: str, *,
                  more: bool = False) -> tuple[bytes, int]:
        response = exchange(conn, apdu, what)
        NTAG424_SW.check(response.sw, what, more=more)
        return response.data, response.sw

    def _native(self, conn: CardConnection, ins: int, data: bytes, what: str, *,
                more: bool = False) -> tuple[bytes, int]:
        apdu = CommandApdu(0x90, ins, 0, 0, data=data, le=256)
        body, sw = self._transmit(conn, apdu, what, more=more)
        return body, sw & 0xFF

    def _secure(self, conn: CardConnection, sm: SecureMessaging, ins: int, header: bytes,
                data: bytes, mode: CommMode, what: str) -> bytes:
        field = sm.protect_command(ins, header, data, mode)
        body, rc = self._native(conn, ins, field, what)
        return sm.open_response(rc, body, mode)

    # --- identification and free probes ----------------------------------------------------

    def _select_app(self, conn: CardConnection) -> None:
        self._transmit(conn, CommandApdu(0x00, 0xA4, 0x04, 0x0C, data=self.cfg.df_name),
                       "select NDEF application")

    def read_uid(self, conn: CardConnection) -> bytes:
        uid, _ = self._transmit(conn, CommandApdu(0xFF, 0xCA, 0, 0, le=256), "GET DATA UID")
        if len(uid) != sun.UID_SIZE:
            raise UnknownCard("the card has no 7-byte UID (random ID enabled, or not an NTAG 424 DNA)")
        return uid

    def _identify(self, conn: CardConnection) -> None:
        first, _ = self._native(conn, 0x60, b"", "GetVersion", more=True)
        ident = self.cfg.identify
        if len(first) < 2 or (first[0], first[1]) != (ident.vendor_id, ident.hw_type):
            raise UnknownCard("GetVersion does not describe an NTAG 424 DNA")
        self._native(conn, 0xAF, b"", "GetVersion", more=True)
        self._native(conn, 0xAF, b"", "GetVersion")

    def _probe(self, conn: CardConnection, *, with_settings: bool = True) -> _Probe:
        self._select_app(conn)
        uid = self.read_uid(conn)
        self._identify(conn)
        versions = tuple(self._key_version(conn, n) for n in range(5))
        return _Probe(uid, versions, self._file_settings(conn) if with_settings else None)

    def _file_settings(self, conn: CardConnection) -> dict[int, FileSettings]:
        settings = {}
        for spec in self.cfg.files.values():
            raw, _ = self._native(conn, 0xF5, bytes((spec.number,)), "GetFileSettings")
            try:
                settings[spec.number] = FileSettings.parse(raw)
            except ValueError as exc:
                raise CardIntegrityError(f"file {spec.number:02X} settings unreadable") from exc
        return settings

    def _key_version(self, conn: CardConnection, key_no: int) -> int:
        raw, _ = self._native(conn, 0x64, bytes((key_no,)), "GetKeyVersion")
        if len(raw) != 1:
            raise CardIntegrityError(f"GetKeyVersion {key_no} answered {len(raw)} bytes, not 1")
        return raw[0]

    def status(self, conn: CardConnection, master_keys: MasterKeys | None = None) -> StatusReport:
        """Classify the card with free commands only (never a trial authentication)."""
        probe = self._probe(conn)
        slots = self._slot_states(probe, master_keys)
        state, detail = self._classify(conn, probe, slots)
        return StatusReport(state=state, uid=probe.uid, detail=detail, key_slots=slots)

    def _slot_states(self, probe: _Probe, master_keys: MasterKeys | None) -> dict[str, str]:
        states = {}
        for key in self.cfg.keys:
            version = probe.versions[key.slot]
            target = version != 0 if master_keys is None else version == master_keys.version
            states[key.role] = "factory" if version == 0 else "diversified" if target else "unknown"
        return states

    def _classify(self, conn: CardConnection, probe: _Probe, slots: dict[str, str]) -> tuple[CardState, str]:
        """From a full probe (file settings read). With ``probe.settings`` None (personalisation),
        a card whose key 0 is still factory is only told factory / partial by its key versions:
        personalisation completes both the same way, rewriting every file's settings and data."""
        master = slots[self.cfg.slot(0).role]
        version = f"app master key version {probe.versions[0]}"
        if master == "diversified":
            settings = probe.settings if probe.settings is not None else self._file_settings(conn)
            personal = all(self._looks_personalised(settings[f.number], f) for f in self.cfg.files.values())
            if personal and set(slots.values()) == {"diversified"}:
                return CardState.personalised, f"{version}; keys diversified, files locked, SUN on"
            return CardState.unknown, f"{version} but layout or other keys incomplete"
        if master == "unknown":
            return CardState.unknown, f"{version}: not the version asked about"
        if probe.settings is None:
            state = CardState.factory if set(slots.values()) == {"factory"} else CardState.partial
            return state, f"{version}; key versions only (files are rewritten either way)"
        factory = all(probe.settings[f.number] == self._factory_settings(f) for f in self.cfg.files.values())
        if factory and set(slots.values()) == {"factory"} and self._ndef_empty(conn):
            return CardState.factory, "factory keys and layout"
        return CardState.partial, "app master key still factory; personalisation incomplete"

    def _ndef_empty(self, conn: CardConnection) -> bool:
        ndef = self.cfg.files["ndef"]
        self._transmit(conn, CommandApdu(0x00, 0xA4, 0x00, 0x0C, data=ndef.iso_id), "select NDEF file")
        nlen, _ = self._transmit(conn, CommandApdu(0x00, 0xB0, 0, 0, le=2), "read NLEN")
        return nlen == b"\x00\x00"

    def _factory_settings(self, spec: FileSpec) -> FileSettings:
        return FileSettings(COMM_BITS[spec.factory_comm_mode], spec.factory_access.rights(), spec.size)

    def _looks_personalised(self, settings: FileSettings, spec: FileSpec) -> bool:
        wanted = FileSettings(COMM_BITS[spec.comm_mode], spec.access.rights(), spec.size)
        same = (settings.comm_bits, settings.access, settings.size) == (wanted.comm_bits, wanted.access,
                                                                         wanted.size)
        return same and (settings.sdm is not None) == (spec is self.cfg.files["ndef"])

    # --- keys ----------------------------------------------------------------------------------

    def _card_keys(self, master_keys: MasterKeys, uid: bytes) -> list[bytes]:
        check_master_keys(master_keys, (k.master for k in self.cfg.keys))
        return [self.cfg.card_key(n, master_keys.keys, uid=uid,
                                  system_identifier=master_keys.system_identifier) for n in range(5)]

    def _authenticate(self, conn: CardConnection, key_no: int, key: bytes) -> SecureMessaging:
        auth = Ev2Authenticator(key, self._rng(16))
        challenge, _ = self._native(conn, 0x71, Ev2Authenticator.first_command_data(key_no),
                                    f"authenticate key {key_no}", more=True)
        reply, _ = self._native(conn, 0xAF, auth.answer_challenge(challenge), f"authenticate key {key_no}")
        return auth.finish(reply)

    # --- personalisation -------------------------------------------------------------------

    def personalise(self, conn: CardConnection, plan: PersonalisationPlan,
                    progress: ProgressCallback | None = None) -> CardReadout:
        step = progress or (lambda _msg: None)
        probe = self._probe(conn, with_settings=False)
        keys = self._card_keys(plan.master_keys, probe.uid)
        ndef = ndef_content(self.cfg, plan.sun_base_url)
        record = card_record(self.cfg, plan.card_number, plan.credential)
        slots = self._slot_states(probe, plan.master_keys)
        state, detail = self._classify(conn, probe, slots)
        log.info("personalising card %s: card state %s (%s)", plan.card_number, state, detail)
        if state is CardState.personalised:
            return self._confirm_existing(conn, plan)
        if state is CardState.unknown or "unknown" in slots.values():
            raise CardSpoiled(f"card state cannot be completed: {detail}; slots {slots}")
        sm = self._authenticate(conn, 0, FACTORY_KEY)
        self._write_files(conn, sm, plan, ndef, record, step)
        self._change_other_keys(conn, sm, keys, probe.versions, plan.master_keys.version, step)
        step("checking the card before the last key change")
        readout = self._check_before_commit(conn, keys, plan, probe.uid)
        step("changing the app master key (point of no return)")
        sm = self._authenticate(conn, 0, FACTORY_KEY)
        field = sm.protect_command(0xC4, b"\x00", change_key_data(keys[0], plan.master_keys.version),
                                   CommMode.full)
        self._native(conn, 0xC4, field, "ChangeKey 0")
        return readout

    def _write_files(self, conn: CardConnection, sm: SecureMessaging, plan: PersonalisationPlan,
                     ndef: bytes, record: bytes, step: ProgressCallback) -> None:
        files = self.cfg.files
        step("locking file 03 and writing the credential")
        self._change_settings(conn, sm, files["data"], None)
        self._write(conn, sm, files["data"], 0, plan.credential.ljust(files["data"].size, b"\x00"))
        step("writing the NDEF URL and card record")
        self._write(conn, sm, files["ndef"], 0, ndef)
        self._write(conn, sm, files["ndef"], self.cfg.record.offset, record)
        step("enabling SUN and locking the NDEF and CC files")
        self._change_settings(conn, sm, files["ndef"], sdm_settings(self.cfg, ndef))
        self._change_settings(conn, sm, files["cc"], None)

    def _change_other_keys(self, conn: CardConnection, sm: SecureMessaging, keys: list[bytes],
                           versions: tuple[int, ...], version: int, step: ProgressCallback) -> None:
        for slot in (4, 3, 2, 1):
            if versions[slot] == version:
                continue  # changed by an earlier, interrupted run (ChangeKey is atomic)
            step(f"changing key {slot}")
            data = change_key_data(keys[slot], version, old_key=FACTORY_KEY)
            self._secure(conn, sm, 0xC4, bytes((slot,)), data, CommMode.full, f"ChangeKey {slot}")

    def _check_before_commit(self, conn: CardConnection, keys: list[bytes], plan: PersonalisationPlan,
                             uid: bytes) -> CardReadout:
        """Read as a verifier would; the result is the read-back. A refused key or a SUN made with
        other keys spoils the card; a garbled answer (bad response MAC, unreadable record) stays a
        retryable CardIntegrityError: key 0 is factory."""
        try:
            stored = self._read_protected(conn, keys, check_uid=uid)
        except WrongKey as exc:
            raise CardSpoiled(f"card keys do not match the plan before commit: {exc.message}") from exc
        content = self._read_ndef_file(conn)
        record = parse_card_record(content[self.cfg.record.offset :])
        try:
            self._verify_sun(_ndef_uri(content), keys, uid)
        except CardIntegrityError as exc:
            raise CardSpoiled(f"SUN keys do not match the plan before commit: {exc.message}") from exc
        same = record == (plan.card_number, len(plan.credential))
        if not same or not hmac.compare_digest(stored[: len(plan.credential)], plan.credential):
            raise CardSpoiled("card number or credential read back differs from what was written")
        return CardReadout(uid=uid, card_number=record[0], credential=stored[: record[1]],
                           key_version=plan.master_keys.version)

    def _read_ndef_file(self, conn: CardConnection) -> bytes:
        """The whole NDEF file as a phone's unauthenticated read sees it (one SUN mirror), read by
        short file identifier after selecting the application: 2 APDUs for a 256-byte file."""
        self._select_app(conn)
        ndef, content = self.cfg.files["ndef"], b""
        while len(content) < ndef.size:  # later chunks (files > 256 B) from the file now selected
            offset = len(content)
            p1, p2 = divmod(offset, 256) if offset else (0x80 | ndef.number, 0)
            chunk, _ = self._transmit(conn, CommandApdu(0x00, 0xB0, p1, p2,
                                                        le=min(256, ndef.size - offset)), "read NDEF file")
            if not chunk:
                raise CardIntegrityError("READ BINARY of the NDEF file returned no data")
            content += chunk
        return content

    def _verify_sun(self, url: bytes, keys: list[bytes], uid: bytes) -> None:
        sun_cfg = self.cfg.sun
        message = sun.parse_sun_url(url.decode("ascii"), picc_param=sun_cfg.picc_param,
                                    mac_param=sun_cfg.mac_param)
        reading = sun.verify_sun(message, meta_read_key=keys[sun_cfg.meta_read_key],
                                 file_read_key=lambda _uid: keys[sun_cfg.file_read_key])
        if reading.uid != uid:
            raise CardIntegrityError("SUN message names another UID")

    def _confirm_existing(self, conn: CardConnection, plan: PersonalisationPlan) -> CardReadout:
        readout = self.read_back(conn, plan.master_keys)
        same = readout.card_number == plan.card_number and hmac.compare_digest(readout.credential,
                                                                               plan.credential)
        if not same:
            raise CardSpoiled("card is already personalised with other data")
        return readout

    def _change_settings(self, conn: CardConnection, sm: SecureMessaging, spec: FileSpec,
                         sdm: SdmSettings | None) -> None:
        settings = FileSettings(COMM_BITS[spec.comm_mode], spec.access.rights(), spec.size, sdm)
        self._secure(conn, sm, 0x5F, bytes((spec.number,)), settings.change_bytes(), CommMode.full,
                     f"ChangeFileSettings {spec.number:02X}")

    def _write(self, conn: CardConnection, sm: SecureMessaging, spec: FileSpec, offset: int,
               data: bytes) -> None:
        mode = CommMode(spec.comm_mode) if spec.number == 3 else CommMode.plain
        for start in range(0, len(data), _FRAME):  # ≤ 128 bytes per command: atomic on the chip
            chunk = data[start : start + _FRAME]
            header = bytes((spec.number,)) + (offset + start).to_bytes(3, "little") + len(chunk).to_bytes(
                3, "little")
            self._secure(conn, sm, 0x8D, header, chunk, mode, f"WriteData {spec.number:02X}")

    # --- read-back and proof ---------------------------------------------------------------

    def read_back(self, conn: CardConnection, master_keys: MasterKeys) -> CardReadout:
        """Authenticate with the card's data_read key; card number and credential from the card."""
        self._select_app(conn)
        uid = self.read_uid(conn)
        keys = self._card_keys(master_keys, uid)
        protected = self._read_protected(conn, keys, check_uid=uid)
        number, cred_len = self._read_record(conn)
        return CardReadout(uid=uid, card_number=number, credential=protected[:cred_len],
                           key_version=master_keys.version)

    def _read_protected(self, conn: CardConnection, keys: list[bytes],
                        check_uid: bytes | None = None) -> bytes:
        key_no = int(self.cfg.files["data"].access.read)  # a key slot: the profile refuses free/never
        sm = self._authenticate(conn, key_no, keys[key_no])
        if check_uid is not None:
            card_uid = self._secure(conn, sm, 0x51, b"", b"", CommMode.full, "GetCardUID")
            if not hmac.compare_digest(card_uid, check_uid):
                raise CardIntegrityError("the chip's UID differs from the one the reader reported")
        spec = self.cfg.files["data"]
        header = bytes((spec.number,)) + bytes(3) + spec.size.to_bytes(3, "little")
        return self._secure(conn, sm, 0xAD, header, b"", CommMode(spec.comm_mode), "ReadData 03")

    def _read_record(self, conn: CardConnection) -> tuple[str, int]:
        offset, size = self.cfg.record.offset, self.cfg.files["ndef"].size
        header = b"\x02" + offset.to_bytes(3, "little") + (size - offset).to_bytes(3, "little")
        raw, _ = self._native(conn, 0xAD, header, "ReadData card record")
        return parse_card_record(raw)

    def _read_url(self, conn: CardConnection) -> bytes:
        """The NDEF URI as a phone reads it (ISO select + READ BINARY; one SUN read)."""
        self._select_app(conn)
        ndef = self.cfg.files["ndef"]
        self._transmit(conn, CommandApdu(0x00, 0xA4, 0x00, 0x0C, data=ndef.iso_id), "select NDEF file")
        nlen, _ = self._transmit(conn, CommandApdu(0x00, 0xB0, 0, 0, le=2), "read NLEN")
        length = int.from_bytes(nlen, "big")
        if not 5 < length <= ndef.size - 2:
            raise CardIntegrityError("NDEF file holds no URI record")
        message, _ = self._transmit(conn, CommandApdu(0x00, 0xB0, 0, 2, le=length), "read NDEF")
        return parse_uri_message(message)

    def prove(self, conn: CardConnection, challenge: bytes) -> CardProof:
        """A SUN proof: the URL as read (the SDMReadCtr inside makes it fresh, not ``challenge``)."""
        url = self._read_url(conn)
        return CardProof(kind="sun", uid=self.read_uid(conn), challenge=challenge, payload=url)


def _ndef_uri(content: bytes) -> bytes:
    """The URI in an NDEF file's content (NLEN ‖ message ‖ …)."""
    length = int.from_bytes(content[:2], "big")
    if not 5 < length <= len(content) - 2:
        raise CardIntegrityError("NDEF file holds no URI record")
    return parse_uri_message(content[2 : 2 + length])
