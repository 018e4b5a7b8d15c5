"""FmcosDriver against the emulated card over DirectConnection: personalise, read back, prove,
status without spending counters, wrong keys, refusals, and the SM4 variant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto.fmcos import TDES, auth_cryptogram, suite, verify_internal_auth
from cardsvc.drivers.base import CardState, MasterKeys, PersonalisationPlan, driver_for
from cardsvc.drivers.fmcos import FmcosDriver, Stage, decode_marker, encode_marker
from cardsvc.drivers.fmcos_session import FMCOS_SW, FmcosSession, short_file_id
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.emulator.fmcos_fs import FACTORY_KEY
from cardsvc.errors import (
    AccessDenied,
    AuthenticationDelay,
    CardIntegrityError,
    CardSpoiled,
    CardStatusError,
    ConfigError,
    CryptoError,
    FileNotFound,
    IssuanceError,
    ProfileError,
    WrongKey,
)
from cardsvc.logging import TRACE
from cardsvc.profiles import Profile
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.transport.fake import ScriptedConnection
from tests.fmcos.conftest import UID, counting_rng, make_plan, master_keys
from tests.support.cards import DirectConnection

H = bytes.fromhex


def card_key(cfg: FmcosConfig, keys: MasterKeys, role: str, uid: bytes = UID) -> bytes:
    """The per-card key computed the way a verifier does: profile slot + AN10922, no driver."""
    slot = cfg.key(role)
    return slot.derive(keys.keys[slot.master_role], uid=uid, aid=cfg.diversification_aid,
                       system_identifier=keys.system_identifier, cipher_suite=cfg.cipher_suite)


def personalised(driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan) -> FmcosCard:
    driver.personalise(DirectConnection(card), plan)
    return card


def ins_sent(conn: DirectConnection, ins: int) -> int:
    return sum(1 for apdu in conn.sent if apdu[1] == ins)


def mf_key(card: FmcosCard) -> str:
    return str(card.to_image()["mf"]["key_file"]["keys"][0]["value"])


def test_driver_for_profile_family(profile: Profile) -> None:
    assert isinstance(driver_for(profile), FmcosDriver)


def test_personalise_from_factory_and_read_back(driver: FmcosDriver, card: FmcosCard,
                                                plan: PersonalisationPlan, cfg: FmcosConfig) -> None:
    steps: list[str] = []
    readout = driver.personalise(DirectConnection(card), plan, steps.append)
    assert (readout.uid, readout.card_number, readout.credential, readout.key_version) == (
        UID, plan.card_number, plan.credential, 1)
    assert steps[0] == "authenticate" and steps[-3:] == ["verify", "change_mf_key", "complete"]
    assert steps.index("change_mf_key") > steps.index("intent")  # the MF key changes last
    assert driver.read_back(DirectConnection(card), plan.master_keys) == readout
    assert mf_key(card) == card_key(cfg, plan.master_keys, "mf_admin").hex().upper()
    assert driver.read_uid(DirectConnection(card)) == UID


def test_factory_key_no_longer_opens_the_mf(driver: FmcosDriver, card: FmcosCard,
                                            plan: PersonalisationPlan) -> None:
    personalised(driver, card, plan)
    session = FmcosSession(DirectConnection(card), TDES)
    session.select_fid(0x3F00, "MF")
    with pytest.raises(WrongKey) as caught:
        session.external_auth(0x00, FACTORY_KEY, "MF")
    assert caught.value.attempts_left == 4  # counter 55: five attempts, one spent here


def test_proof_verifies_with_the_diversified_internal_key(
        driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan, cfg: FmcosConfig) -> None:
    personalised(driver, card, plan)
    challenge = H("5A5A0102A5A50304")
    proof = driver.prove(DirectConnection(card), challenge)
    assert (proof.kind, proof.uid, proof.challenge) == ("internal_auth", UID, challenge)
    key = card_key(cfg, plan.master_keys, "internal_auth")
    verify_internal_auth(TDES, key, challenge, proof.payload)
    other = driver.prove(DirectConnection(card), H("0000000000000001"))
    assert other.payload != proof.payload  # a fresh challenge gets a fresh cryptogram
    with pytest.raises(CardIntegrityError):
        verify_internal_auth(TDES, key, challenge, other.payload)


def test_card_of_one_master_key_does_not_verify_under_another(
        driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan,
        profile: Profile, cfg: FmcosConfig) -> None:
    personalised(driver, card, plan)
    foreign = master_keys(profile, seed=7)
    proof = driver.prove(DirectConnection(card), H("0102030405060708"))
    with pytest.raises(CardIntegrityError):
        verify_internal_auth(TDES, card_key(cfg, foreign, "internal_auth"), proof.challenge,
                             proof.payload)
    with pytest.raises(CardIntegrityError):
        driver.read_back(DirectConnection(card), foreign)  # line-protection MAC fails
    report = driver.status(DirectConnection(card), foreign)
    assert report.state is CardState.unknown and "not under these master keys" in report.detail
    assert driver.status(DirectConnection(card), plan.master_keys).state is CardState.personalised


def test_status_spends_no_counter_and_changes_nothing(
        driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan) -> None:
    conn = DirectConnection(card)
    assert driver.status(conn).state is CardState.factory
    assert ins_sent(conn, 0x82) == 0
    personalised(driver, card, plan)
    before = card.to_image()
    conn = DirectConnection(card)
    report = driver.status(conn, plan.master_keys)
    assert report.state is CardState.personalised and report.uid == UID
    assert report.key_slots["mf_admin"] == "diversified"
    assert ins_sent(conn, 0x82) == 0 and ins_sent(conn, 0xD6) == 0 and ins_sent(conn, 0xD4) == 0
    assert card.to_image() == before


def test_wrong_mf_key_raises_wrong_key_once(driver: FmcosDriver, plan: PersonalisationPlan) -> None:
    card = FmcosCard.blank(uid=UID, rng=counting_rng())
    card.mf.key_file.keys[0].value = bytes(range(16))  # type: ignore[union-attr]  # someone else's
    conn = DirectConnection(card)
    with pytest.raises(WrongKey) as caught:
        driver.personalise(conn, plan)
    assert caught.value.attempts_left == 14
    assert ins_sent(conn, 0x82) == 1  # no second try, no other key
    assert ins_sent(conn, 0x0E) == 0  # nothing erased


def test_locked_mf_key_raises_authentication_delay(driver: FmcosDriver,
                                                   plan: PersonalisationPlan) -> None:
    card = FmcosCard.blank(uid=UID, rng=counting_rng())
    card.mf.key_file.keys[0].fourth = 0xF0  # type: ignore[union-attr]
    with pytest.raises(AuthenticationDelay):
        driver.personalise(DirectConnection(card), plan)


def _card_at_intent(driver: FmcosDriver, plan: PersonalisationPlan) -> FmcosCard:
    """A card torn right after the INTENT marker (the MF key change not yet sent)."""
    card = FmcosCard.blank(uid=UID, rng=counting_rng())
    probe = DirectConnection(card)
    driver.personalise(probe, plan)
    intent_index = next(i for i, apdu in enumerate(probe.sent)
                        if apdu[1] == 0xD6 and apdu[5:7] == encode_marker(Stage.intent, 1)[:2])
    card = FmcosCard.blank(uid=UID, rng=counting_rng())
    with pytest.raises(Exception, match="card pulled"):
        driver.personalise(DirectConnection(card, tear_at=intent_index + 1), plan)
    return card


def test_intent_card_under_other_master_keys_fails_once(
        driver: FmcosDriver, plan: PersonalisationPlan, profile: Profile) -> None:
    card = _card_at_intent(driver, plan)
    assert driver.status(DirectConnection(card)).state is CardState.partial
    conn = DirectConnection(card)
    with pytest.raises(WrongKey):
        driver.personalise(conn, make_plan(profile, seed=9))
    assert ins_sent(conn, 0x82) == 1 and ins_sent(conn, 0xD4) == 0  # the MF key was not touched
    assert driver.personalise(DirectConnection(card), plan).card_number == plan.card_number


def test_intent_card_with_a_stranger_mf_key_is_spoiled(
        driver: FmcosDriver, plan: PersonalisationPlan) -> None:
    card = _card_at_intent(driver, plan)
    card.mf.key_file.keys[0].value = bytes(range(16))  # type: ignore[union-attr]
    with pytest.raises(CardSpoiled, match="neither the factory key nor ours"):
        driver.personalise(DirectConnection(card), plan)
    assert card.mf.key_file.keys[0].attempts_left == 5  # type: ignore[union-attr]


def test_resume_with_other_data_rewrites_it_before_completion(
        driver: FmcosDriver, plan: PersonalisationPlan, profile: Profile) -> None:
    card = _card_at_intent(driver, plan)
    other = make_plan(profile, card_number="31010100000043", credential=b"\x01" * 100)
    readout = driver.personalise(DirectConnection(card), other)
    assert (readout.card_number, readout.credential) == (other.card_number, other.credential)


def test_personalised_card_is_idempotent_for_the_same_plan(
        driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan, profile: Profile) -> None:
    first = driver.personalise(DirectConnection(card), plan)
    conn = DirectConnection(card)
    assert driver.personalise(conn, plan) == first
    assert ins_sent(conn, 0xD6) == ins_sent(conn, 0xD4) == ins_sent(conn, 0x82) == 0
    with pytest.raises(CardSpoiled, match="already personalised"):
        driver.personalise(DirectConnection(card), make_plan(profile, card_number="99"))
    with pytest.raises(CardSpoiled, match="key version 1"):
        driver.personalise(DirectConnection(card), make_plan(profile, version=2))


@pytest.mark.parametrize(
    ("number", "credential", "error"),
    [("31010100000042", b"", IssuanceError), ("31010100000042", bytes(129), IssuanceError),
     ("", b"x", IssuanceError), ("3101-01", b"x", IssuanceError), ("卡号", b"x", IssuanceError),
     ("1" * 24, b"x", IssuanceError)],
)
def test_plans_that_do_not_fit_are_refused_before_any_write(
        driver: FmcosDriver, card: FmcosCard, profile: Profile,
        number: str, credential: bytes, error: type[Exception]) -> None:
    conn = DirectConnection(card)
    with pytest.raises(error):
        driver.personalise(conn, make_plan(profile, card_number=number, credential=credential))
    assert conn.sent == []


def test_missing_master_role_or_bad_version_is_refused_before_any_apdu(
        driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan) -> None:
    keys = MasterKeys(version=1, keys={"fmcos_mf_admin": bytes(16)}, system_identifier=b"SI")
    bad = PersonalisationPlan(card_number="1", credential=b"x", master_keys=keys)
    conn = DirectConnection(card)
    with pytest.raises(ConfigError, match="fmcos_app_admin"):
        driver.personalise(conn, bad)
    for version in (0, 256):  # the marker and key records hold one byte: 256 would read back as 0
        with pytest.raises(ConfigError, match=r"1\.\.255"):
            driver.personalise(conn, make_plan(driver.profile, version=version))
    assert [apdu[:2] for apdu in conn.sent] == [H("FFCA")] * 3  # only the reader's UID query


def test_read_back_and_prove_refuse_unfinished_cards(
        driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan) -> None:
    with pytest.raises(FileNotFound):
        driver.read_back(DirectConnection(card), plan.master_keys)
    with pytest.raises(FileNotFound):
        driver.prove(DirectConnection(card), bytes(8))
    intent = _card_at_intent(driver, plan)
    with pytest.raises(CardIntegrityError, match="not complete"):
        driver.read_back(DirectConnection(intent), plan.master_keys)
    with pytest.raises(CryptoError):
        driver.prove(DirectConnection(intent), bytes(16))


def test_marker_codec() -> None:
    assert decode_marker(encode_marker(Stage.complete, 3)) == (Stage.complete, 3)
    assert decode_marker(encode_marker(Stage.intent, 3)) == (Stage.intent, 3)
    assert decode_marker(bytes(3)) == (Stage.building, 0)
    assert decode_marker(H("0100 00")) == (Stage.building, 0)  # torn INTENT: state byte only
    assert decode_marker(H("02FE05")) == (Stage.intent, 5)  # torn COMPLETE
    assert decode_marker(H("7F1234"))[0] is None


def test_session_follows_61xx_and_6cxx() -> None:
    # the shared processors (cardsvc.apdu) follow both; the reader's FF CA only ever sees 6Cxx
    script = [
        (H("FFCA000000"), H("6C04")),
        (H("FFCA000004"), UID + H("9000")),
        (H("00B0000003"), H("02FD6102")),
        (H("00C0000002"), H("01009000")),
    ]
    conn = ScriptedConnection(script)
    session = FmcosSession(conn, TDES)
    assert session.uid() == UID
    assert session.read_binary(3, "status") == H("02FD0100")
    conn.assert_done()


def test_sm4_variant_end_to_end(profile: Profile) -> None:
    assert isinstance(profile.config, FmcosConfig)
    sm4_profile = profile.model_copy(
        update={"config": profile.config.model_copy(update={"cipher_suite": "sm4"})})
    driver = FmcosDriver(sm4_profile, rng=counting_rng())
    card = FmcosCard.blank(uid=UID, suite="sm4", rng=counting_rng())
    plan = make_plan(profile)
    readout = driver.personalise(DirectConnection(card), plan)
    assert readout.credential == plan.credential
    challenge = bytes(range(16))
    proof = driver.prove(DirectConnection(card), challenge)
    cfg = sm4_profile.config
    verify_internal_auth(suite("sm4"), card_key(cfg, plan.master_keys, "internal_auth"),
                         challenge, proof.payload)
    assert card.to_image()["suite"] == "sm4"


def test_external_auth_cryptogram_matches_cardcrypto(card: FmcosCard) -> None:
    session = FmcosSession(DirectConnection(card), TDES)
    challenge = session.challenge(8)
    # the emulator checks E(K, challenge) with the same primitive the driver uses
    command = CommandApdu(0x00, 0x82, 0x00, 0x00, auth_cryptogram(TDES, FACTORY_KEY, challenge))
    assert session.run(command, "EXTERNAL AUTHENTICATE") == b""


def test_status_of_a_card_without_an_fmcos_mf_is_unknown(driver: FmcosDriver) -> None:
    conn = ScriptedConnection([(H("FFCA000000"), UID + H("9000")),
                               (H("00A40000023F00"), H("6D00"))])
    report = driver.status(conn)
    assert report.state is CardState.unknown and "no FMCOS MF" in report.detail
    conn.assert_done()


def test_encrypted_credential_file_variant(profile: Profile) -> None:
    assert isinstance(profile.config, FmcosConfig)
    files = [f.model_copy(update={"protection": "mac_enc"}) if f.role == "credential" else f
             for f in profile.config.files]
    enc_profile = profile.model_copy(
        update={"config": profile.config.model_copy(update={"files": files})})
    driver = FmcosDriver(enc_profile, rng=counting_rng())
    card = FmcosCard.blank(uid=UID, rng=counting_rng())
    plan = make_plan(profile, credential=bytes(range(128)))
    assert driver.personalise(DirectConnection(card), plan).credential == plan.credential
    app = card.mf.dfs[0]
    stored = bytes(app.efs[0x0002].data)
    assert app.efs[0x0002].flags == 0xC0
    assert stored[:2] == b"\x00\x80" and stored[2:] == plan.credential  # plaintext at rest
    assert driver.read_back(DirectConnection(card), plan.master_keys).credential == plan.credential


@pytest.mark.parametrize(
    ("sw", "error", "check"),
    [
        (0x63C3, WrongKey, lambda e: e.attempts_left == 3),
        (0x63C0, WrongKey, lambda e: e.attempts_left == 0),
        (0x6983, AuthenticationDelay, lambda e: e.sw == 0x6983),
        (0x6A82, FileNotFound, lambda e: e.fid == "1001"),
        (0x6A88, FileNotFound, lambda e: e.fid == "1001"),
        (0x6982, AccessDenied, lambda e: e.sw == 0x6982),
        (0x6988, CardIntegrityError, lambda e: "MAC" in e.message),
        (0x6A84, CardStatusError, lambda e: type(e) is CardStatusError and e.sw == 0x6A84),
    ],
)
def test_one_table_turns_status_words_into_errors(sw: int, error: type[Exception],
                                                  check: Callable[[Any], bool]) -> None:
    with pytest.raises(error) as caught:
        FMCOS_SW.check(sw, "SELECT application", fid="1001")
    assert check(caught.value)
    FMCOS_SW.check(0x9000, "anything")  # success raises nothing


def test_trace_never_shows_keys_or_cryptograms(driver: FmcosDriver, card: FmcosCard,
                                               plan: PersonalisationPlan, cfg: FmcosConfig,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(TRACE, logger="cardsvc")
    driver.personalise(DirectConnection(card), plan)
    driver.prove(DirectConnection(card), bytes(8))
    text = caplog.text.upper()
    assert "EXTERNAL AUTHENTICATE" in text  # the trace is there …
    secrets = [card_key(cfg, plan.master_keys, role) for role in
               ("mf_admin", "app_admin", "internal_auth", "line_protection")]
    secrets += [*plan.master_keys.keys.values(), FACTORY_KEY]
    for secret in secrets:  # … but no key material in any form
        assert secret.hex().upper() not in text and secret.hex(" ").upper() not in text


def test_efs_are_addressed_by_short_file_id(driver: FmcosDriver, card: FmcosCard,
                                            plan: PersonalisationPlan) -> None:
    """No SELECT per EF during personalisation: READ/UPDATE BINARY carry ``1 0 0 SFI`` in P1; the
    credential's line-protection MAC covers that header; nothing is sent after the COMPLETE marker."""
    conn = DirectConnection(card)
    readout = driver.personalise(conn, plan)
    selected = [apdu[5:7] for apdu in conn.sent if apdu[:3] == b"\x00\xa4\x00"]
    assert set(selected) == {b"\x3f\x00"}  # only the MF by FID; the ADF by name
    binary = [apdu[:3] for apdu in conn.sent if apdu[1] in (0xB0, 0xD6)]
    assert binary and all(header[2] & 0x80 for header in binary)
    assert bytes.fromhex("04D682") in binary  # line-protected UPDATE BINARY of EF 0002
    assert conn.sent[-1][1] == 0xD6 and conn.sent[-1][5:7] == encode_marker(Stage.complete, 1)[:2]
    assert driver.read_back(DirectConnection(card), plan.master_keys) == readout


def test_short_file_ids_must_be_usable_and_distinct(profile: Profile) -> None:
    assert isinstance(profile.config, FmcosConfig)
    assert short_file_id(0x0003) == 3
    with pytest.raises(ValueError, match="short file identifier"):
        short_file_id(0x0020)
    clash = [f.model_copy(update={"fid": 0x0021}) if f.role == "status" else f
             for f in profile.config.files]  # 0021 and 0001 share SFI 1
    clashing = profile.model_copy(update={"config": profile.config.model_copy(update={"files": clash})})
    with pytest.raises(ProfileError, match="short file identifier") as caught:
        FmcosDriver(clashing)
    assert caught.value.field == "fmcos.files"
