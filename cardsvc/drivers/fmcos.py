"""FMCOS 2.0 (FM1208 class) driver: status probe, resumable personalisation, read-back, proof.

Card layout (profile ``[fmcos]``): the MF keeps only its key file with the external-auth key 00
(``mf_admin``); the application DF (ADF, selected by name) holds the ``app_admin``,
``internal_auth`` and ``line_protection`` keys and three binary files: card number, credential
(written under line protection) and a status marker.

Personalisation order — and why:

1. authenticate to the MF with the factory key, ERASE the MF, create the MF key file FIRST and
   put the factory key back (the MF stays recoverable with the factory key until step 4);
2. create the ADF, its key file first, its keys (diversified), its files; write the card number
   and the credential;
3. write the status marker INTENT (3 bytes ``state ‖ ~state ‖ key version``);
4. authenticate to the ADF with its admin key, compare the data with the plan (rewrite it when
   different) and self-test INTERNAL AUTHENTICATE — all before anything irreversible;
5. change the MF admin key with a line-protected WRITE KEY whose MAC is computed under the
   factory key — the POINT OF NO RETURN. The card accepts it only while the factory key is
   present, so replaying it after a tear is a free, counter-neutral compare-and-swap;
6. authenticate to the ADF again and write the marker COMPLETE.

What step 4 read (and compared with the plan) under the card's keys is the read-back that
personalisation returns: only the MF key and the marker change after it, and issuance reads the
card back once more anyway — an APDU costs a real reader 15–60 ms, none is sent twice.

A retry reads the marker (free) and resumes: no marker / INTENT torn → start again from 1 (the MF
key is certainly the factory key); INTENT or COMPLETE torn → finish 4–6; COMPLETE → compare.
Each authentication uses the single key the marker says must be there; none is ever guessed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cardsvc.cardcrypto import fmcos as fc
from cardsvc.drivers._keys import check_master_keys
from cardsvc.drivers.base import (
    MAX_CREDENTIAL_SIZE,
    CardProof,
    CardReadout,
    CardState,
    MasterKeys,
    PersonalisationPlan,
    ProgressCallback,
    StatusReport,
)
from cardsvc.drivers.fmcos_marker import (
    MARKER_SIZE,
    Stage,
    decode_marker,
    encode_marker,
    report_for,
    slot_states,
)
from cardsvc.drivers.fmcos_session import (
    FmcosSession,
    KeyRecord,
    df_create_data,
    ef_create_data,
    key_file_create_data,
    short_file_id,
)
from cardsvc.errors import (
    CardIntegrityError,
    CardSpoiled,
    CardStatusError,
    CryptoError,
    FileNotFound,
    IssuanceError,
    ProfileError,
)
from cardsvc.logging import get_logger
from cardsvc.profiles import Profile
from cardsvc.profiles.fmcos import LENGTH_PREFIX, FmcosConfig
from cardsvc.transport.base import CardConnection

log = get_logger(__name__)
Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class _CardKeys:
    """The per-card keys of one card by slot role (never printed)."""

    by_role: Mapping[str, bytes]

    def __getitem__(self, role: str) -> bytes:
        return self.by_role[role]

    def __repr__(self) -> str:
        return f"_CardKeys(roles={sorted(self.by_role)})"


class FmcosDriver:
    """The FMCOS card family's :class:`~cardsvc.drivers.base.CardDriver`."""

    def __init__(self, profile: Profile, *, rng: Rng = os.urandom) -> None:
        if not isinstance(profile.config, FmcosConfig):
            raise ProfileError("not an FMCOS profile", file=str(profile.source), field="fmcos")
        self.profile = profile
        self.config: FmcosConfig = profile.config
        self.cs = fc.suite(self.config.cipher_suite)
        self._rng = rng
        try:
            self._sfi = {spec.role: short_file_id(spec.fid) for spec in self.config.files}
        except ValueError as exc:
            raise ProfileError(str(exc), file=str(profile.source), field="fmcos.files") from exc
        if len(set(self._sfi.values())) != len(self._sfi):
            raise ProfileError("EFs share a short file identifier (low 5 bits of the FID)",
                               file=str(profile.source), field="fmcos.files")

    # --- keys ------------------------------------------------------------------------------------

    def card_keys(self, master_keys: MasterKeys, uid: bytes) -> _CardKeys:
        """Diversify every slot's key for this card (AN10922 over UID ‖ AID ‖ slot ‖ SI)."""
        check_master_keys(master_keys, (slot.master_role for slot in self.config.keys))
        return _CardKeys({slot.role: self.config.card_key(slot.role, master_keys.keys[slot.master_role],
                                                          uid=uid,
                                                          system_identifier=master_keys.system_identifier)
                          for slot in self.config.keys})

    # --- CardDriver ------------------------------------------------------------------------------

    def read_uid(self, conn: CardConnection) -> bytes:
        return FmcosSession(conn, self.cs).uid()

    def status(self, conn: CardConnection, master_keys: MasterKeys | None = None) -> StatusReport:
        """Classify the card with free commands only (no authentication, no counter spent)."""
        session = FmcosSession(conn, self.cs)
        uid = session.uid()
        try:
            session.select_fid(self.config.mf.fid, "MF")
        except CardStatusError as exc:
            return StatusReport(CardState.unknown, uid, f"no FMCOS MF: {exc.message}",
                                slot_states("unknown", "unknown"))
        if not self._select_application(session):
            return StatusReport(CardState.factory, uid, "no cardsvc application: factory card "
                                "(or erased before the application existed)",
                                {"mf_admin": "factory"})  # the application slots do not exist
        stage, version = self._read_stage(session)
        report = report_for(stage, version, uid)
        if stage is Stage.complete and master_keys is not None:
            report = self._confirm_personalised(session, report, master_keys)
        return report

    def personalise(self, conn: CardConnection, plan: PersonalisationPlan,
                    progress: ProgressCallback | None = None) -> CardReadout:
        """Personalise from factory state, or resume a partial card; see the module docstring."""
        self._check_plan(plan)
        step = progress or (lambda _name: None)
        session = FmcosSession(conn, self.cs)
        uid = session.uid()
        keys = self.card_keys(plan.master_keys, uid)
        session.select_fid(self.config.mf.fid, "MF")
        stage, version = self._current_stage(session)
        log.info("personalising card %s for %s: found stage %s", uid.hex(), plan.card_number,
                 stage.name if stage else "unknown")
        if stage is None:
            raise CardSpoiled("the status marker is not one cardsvc writes")
        if stage is not Stage.building and version != plan.master_keys.version:
            raise CardSpoiled(f"card was personalised under key version {version}, "
                              f"not {plan.master_keys.version}",
                              hint=f"finish it with a plan of key version {version}")
        if stage is Stage.complete:
            return self._already_complete(conn, plan)
        if stage is Stage.building:
            self._build(session, plan, keys, step)
        number, credential = self._finish(session, plan, keys, step)
        return CardReadout(uid=uid, card_number=number, credential=credential,
                           key_version=plan.master_keys.version)

    def read_back(self, conn: CardConnection, master_keys: MasterKeys) -> CardReadout:
        """Read the card number, the MAC-protected credential and the key version."""
        session = FmcosSession(conn, self.cs)
        uid = session.uid()
        keys = self.card_keys(master_keys, uid)
        session.select_fid(self.config.mf.fid, "MF")
        session.select_name(self.config.application.df_name, "application")
        stage, version = self._read_stage(session)
        if stage is not Stage.complete:
            raise CardIntegrityError("personalisation is not complete",
                                     hint="run personalise again to complete it")
        if version != master_keys.version:
            raise CardIntegrityError(f"card keys are version {version}, not {master_keys.version}")
        number, credential = self._read_data(session, keys)
        return CardReadout(uid=uid, card_number=number, credential=credential, key_version=version)

    def prove(self, conn: CardConnection, challenge: bytes) -> CardProof:
        """INTERNAL AUTHENTICATE over the verifier's challenge (one cipher block)."""
        if len(challenge) != self.cs.block_size:
            raise CryptoError(f"challenge must be {self.cs.block_size} bytes, got {len(challenge)}")
        session = FmcosSession(conn, self.cs)
        uid = session.uid()
        session.select_fid(self.config.mf.fid, "MF")
        session.select_name(self.config.application.df_name, "application")
        cryptogram = session.internal_auth(self.config.key("internal_auth").key_id, challenge)
        return CardProof(kind="internal_auth", uid=uid, challenge=challenge, payload=cryptogram)

    # --- probing ---------------------------------------------------------------------------------

    def _select_application(self, session: FmcosSession) -> bool:
        try:
            session.select_name(self.config.application.df_name, "application")
        except FileNotFound:
            return False
        return True

    def _read_stage(self, session: FmcosSession) -> tuple[Stage | None, int]:
        try:
            session.select_fid(self.config.file("status").fid, "status file")
        except FileNotFound:
            return Stage.building, 0
        return decode_marker(session.read_binary(MARKER_SIZE, "status"))

    def _current_stage(self, session: FmcosSession) -> tuple[Stage | None, int]:
        if not self._select_application(session):
            return Stage.building, 0
        return self._read_stage(session)

    def _confirm_personalised(self, session: FmcosSession, report: StatusReport,
                              master_keys: MasterKeys) -> StatusReport:
        """With master keys at hand, a free INTERNAL AUTHENTICATE confirms whose card this is."""
        keys = self.card_keys(master_keys, report.uid or b"")
        try:
            self._self_test(session, keys)
        except CardIntegrityError:
            return StatusReport(CardState.unknown, report.uid,
                                "personalised, but not under these master keys", report.key_slots)
        return report

    def _self_test(self, session: FmcosSession, keys: _CardKeys) -> None:
        challenge = self._rng(self.cs.block_size)
        slot = self.config.key("internal_auth")
        cryptogram = session.internal_auth(slot.key_id, challenge)
        fc.verify_internal_auth(self.cs, keys["internal_auth"], challenge, cryptogram)

    # --- personalisation -------------------------------------------------------------------------

    def _check_plan(self, plan: PersonalisationPlan) -> None:
        limit = min(self.profile.credential_max_size, MAX_CREDENTIAL_SIZE,
                    self.config.file("credential").size - LENGTH_PREFIX)
        if not 0 < len(plan.credential) <= limit:
            raise IssuanceError(f"credential must be 1..{limit} bytes, got {len(plan.credential)}")
        room = self.config.file("card_number").size - 1
        if not (plan.card_number.isascii() and plan.card_number.isalnum()
                and 0 < len(plan.card_number) <= room):
            raise IssuanceError(f"card number must be 1..{room} ASCII letters or digits")

    def _build(self, session: FmcosSession, plan: PersonalisationPlan, keys: _CardKeys,
               step: ProgressCallback) -> None:
        step("authenticate")
        authenticated = self._enter_mf_with_factory_key(session)
        step("erase")
        self._rebuild_mf(session, authenticated=authenticated)
        step("create_application")
        self._create_application(session, plan, keys)
        step("write_data")
        self._write_data(session, plan, keys)
        step("intent")
        session.update_binary(encode_marker(Stage.intent, plan.master_keys.version), "status",
                              sfi=self._sfi["status"])

    def _enter_mf_with_factory_key(self, session: FmcosSession) -> bool:
        session.select_fid(self.config.mf.fid, "MF")
        try:
            session.external_auth(0x00, self.config.factory_key, "MF (factory key)")
        except FileNotFound:
            # The MF has no admin key: a previous run was torn between ERASE and the key install;
            # such a DF is unprotected, so the rebuild proceeds without authentication.
            log.info("MF holds no admin key (torn after erase); continuing unprotected")
            return False
        return True

    def _rebuild_mf(self, session: FmcosSession, *, authenticated: bool) -> None:
        mf = self.config.mf
        session.erase_df()
        session.create_file(mf.key_file_fid, key_file_create_data(mf), "MF key file")
        slot = self.config.key("mf_admin")
        session.install_key(KeyRecord.for_slot(slot, self.config.factory_key, 0), "MF admin")
        if not authenticated:  # the key just installed is the one expected: authenticate now
            session.external_auth(0x00, self.config.factory_key, "MF (factory key)")

    def _create_application(self, session: FmcosSession, plan: PersonalisationPlan,
                            keys: _CardKeys) -> None:
        app = self.config.application
        session.create_file(app.fid, df_create_data(app), "application")
        session.select_name(app.df_name, "application")
        session.create_file(app.key_file_fid, key_file_create_data(app), "application key file")
        version = plan.master_keys.version
        admin = self.config.key("app_admin")
        session.install_key(KeyRecord.for_slot(admin, keys["app_admin"], version), "app admin")
        for slot in self.config.keys_in("adf"):
            if slot.role != "app_admin":
                record = KeyRecord.for_slot(slot, keys[slot.role], version)
                session.write_key_protected(keys["app_admin"], record, slot.role, update=False)
        for spec in sorted(self.config.files, key=lambda f: f.role != "status"):
            session.create_file(spec.fid, ef_create_data(spec), spec.role)

    def _write_data(self, session: FmcosSession, plan: PersonalisationPlan, keys: _CardKeys) -> None:
        """EFs addressed by short file identifier (no SELECT per file), here and in the reads."""
        number = self.config.file("card_number")
        session.update_binary(_encode_number(plan.card_number, number.size), "card number",
                              sfi=self._sfi["card_number"])
        credential = self.config.file("credential")
        payload = len(plan.credential).to_bytes(LENGTH_PREFIX, "big") + plan.credential
        session.update_binary_protected(keys["line_protection"], payload, "credential",
                                        encrypt=credential.protection == "mac_enc",
                                        sfi=self._sfi["credential"])

    def _finish(self, session: FmcosSession, plan: PersonalisationPlan, keys: _CardKeys,
                step: ProgressCallback) -> tuple[str, bytes]:
        """Steps 4–6; returns the card number and credential as read from the card in step 4."""
        step("verify")
        self._enter_application(session, keys)
        data = self._read_data(session, keys)
        if data != (plan.card_number, plan.credential):
            self._write_data(session, plan, keys)
            data = self._read_data(session, keys)
            if data != (plan.card_number, plan.credential):
                raise CardIntegrityError("card data does not read back as written")
        self._self_test(session, keys)
        step("change_mf_key")
        self._swap_mf_key(session, keys, plan.master_keys.version)
        step("complete")
        self._enter_application(session, keys)
        session.update_binary(encode_marker(Stage.complete, plan.master_keys.version), "status",
                              sfi=self._sfi["status"])
        return data

    def _enter_application(self, session: FmcosSession, keys: _CardKeys) -> None:
        """Select the ADF and authenticate with its admin key: proves the plan's keys are the
        card's before anything irreversible happens."""
        session.select_name(self.config.application.df_name, "application")
        session.external_auth(0x00, keys["app_admin"], "application admin")

    def _swap_mf_key(self, session: FmcosSession, keys: _CardKeys, version: int) -> None:
        """Factory → diversified MF admin key; a MAC refusal means the swap already happened,
        which a second, idempotent rewrite under the new key confirms (both are free)."""
        session.select_fid(self.config.mf.fid, "MF")
        record = KeyRecord.for_slot(self.config.key("mf_admin"), keys["mf_admin"], version)
        try:
            session.write_key_protected(self.config.factory_key, record, "MF admin", update=True)
            return
        except CardIntegrityError:
            log.info("MF admin key is no longer the factory key; confirming it is ours")
        try:
            session.write_key_protected(keys["mf_admin"], record, "MF admin (confirm)", update=True)
        except CardIntegrityError as exc:
            raise CardSpoiled("the MF admin key is neither the factory key nor ours") from exc

    def _read_data(self, session: FmcosSession, keys: _CardKeys) -> tuple[str, bytes]:
        number_spec = self.config.file("card_number")
        number = _decode_number(session.read_binary(number_spec.size, "card number",
                                                    sfi=self._sfi["card_number"]))
        spec = self.config.file("credential")
        raw = session.read_binary_protected(keys["line_protection"], spec.size, "credential",
                                            decrypt=spec.protection == "mac_enc",
                                            sfi=self._sfi["credential"])
        length = int.from_bytes(raw[:LENGTH_PREFIX], "big")
        if length > len(raw) - LENGTH_PREFIX:
            raise CardIntegrityError("credential length prefix exceeds the file")
        return number, raw[LENGTH_PREFIX : LENGTH_PREFIX + length]

    def _already_complete(self, conn: CardConnection, plan: PersonalisationPlan) -> CardReadout:
        readout = self.read_back(conn, plan.master_keys)
        if (readout.card_number, readout.credential) != (plan.card_number, plan.credential):
            raise CardSpoiled(f"card is already personalised as {readout.card_number}",
                              hint="use the re-issue workflow for a personalised card")
        return readout


def _encode_number(number: str, size: int) -> bytes:
    raw = number.encode("ascii")
    return bytes((len(raw),)) + raw + bytes(size - 1 - len(raw))


def _decode_number(raw: bytes) -> str:
    length = raw[0] if raw else 0
    if not 0 < length < len(raw):
        raise CardIntegrityError("card number file is empty or malformed")
    try:
        return raw[1 : 1 + length].decode("ascii")
    except UnicodeDecodeError as exc:
        raise CardIntegrityError("card number file is not ASCII") from exc
