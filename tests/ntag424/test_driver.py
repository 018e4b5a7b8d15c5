"""Ntag424Driver against the emulated card through DirectConnection: the issuing station's path."""

from __future__ import annotations

import pytest

from cardsvc.drivers.base import CardState, PersonalisationPlan, driver_for
from cardsvc.drivers.ntag424 import Ntag424Driver
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.errors import (
    AuthenticationDelay,
    CardIntegrityError,
    CardSpoiled,
    ConfigError,
    MalformedCredential,
    UnknownCard,
    WrongKey,
)
from cardsvc.profiles import Profile
from cardsvc.profiles.ntag424 import Ntag424Config
from tests.ntag424.conftest import UID, make_plan, master_keys, verify_url
from tests.ntag424.test_emulator import SELECT_APP, tx
from tests.support.cards import DirectConnection


def test_driver_for_profile(profile: Profile) -> None:
    assert isinstance(driver_for(profile), Ntag424Driver)


def test_factory_card_status_and_uid(driver: Ntag424Driver, card: Ntag424Card) -> None:
    conn = DirectConnection(card)
    assert driver.read_uid(conn) == UID
    report = driver.status(conn)
    assert report.state is CardState.factory
    assert report.uid == UID
    assert set(report.key_slots.values()) == {"factory"}


def test_personalise_read_back_and_sun(driver: Ntag424Driver, card: Ntag424Card, profile: Profile,
                                       cfg: Ntag424Config) -> None:
    plan = make_plan(profile)
    steps: list[str] = []
    readout = driver.personalise(DirectConnection(card), plan, steps.append)
    assert (readout.uid, readout.card_number, readout.credential, readout.key_version) == (
        UID, plan.card_number, plan.credential, 1)
    assert steps[-1].startswith("changing the app master key")
    conn = DirectConnection(card)
    assert driver.status(conn, plan.master_keys).state is CardState.personalised
    assert driver.read_back(conn, plan.master_keys) == readout
    first, second = driver.prove(conn, b""), driver.prove(conn, b"")
    assert first.kind == "sun" and first.uid == UID
    assert first.payload.startswith(b"https://verify.example.cn/t?p=")
    one, two = verify_url(cfg, plan.master_keys, first.payload), verify_url(cfg, plan.master_keys,
                                                                            second.payload)
    assert one.uid == two.uid == UID
    assert two.counter == one.counter + 1


def test_personalisation_spends_no_apdu_twice(driver: Ntag424Driver, card: Ntag424Card,
                                              profile: Profile) -> None:
    """A factory card: no GetFileSettings (key versions tell factory/partial), the NDEF file is read
    once, and ChangeKey 0 is the last APDU — what the pre-commit check read is the read-back."""
    plan = make_plan(profile)
    conn = DirectConnection(card)
    readout = driver.personalise(conn, plan)
    assert not [apdu for apdu in conn.sent if apdu[:2] == b"\x90\xf5"]
    assert len([apdu for apdu in conn.sent if apdu[:2] == b"\x00\xb0"]) == 1
    assert conn.sent[-1][:2] == b"\x90\xc4" and conn.sent[-1][5] == 0  # ChangeKey, key number 0
    assert card.to_image()["keys"][0]["version"] == plan.master_keys.version
    assert driver.read_back(DirectConnection(card), plan.master_keys) == readout


def test_partial_card_is_completed_from_key_versions(driver: Ntag424Driver, card: Ntag424Card,
                                                     profile: Profile, cfg: Ntag424Config) -> None:
    """Key 0 still factory, the (factory: free-write) NDEF file written by a phone: the status
    probe says partial; personalisation, which reads no file, rewrites it and completes the card."""
    plan = make_plan(profile)
    for apdu in (SELECT_APP, "00A4000C02E104", "00D60000090007D101035500414243"):
        assert tx(card, apdu)[1] == 0x9000
    assert driver.status(DirectConnection(card)).state is CardState.partial
    readout = driver.personalise(DirectConnection(card), plan)
    assert (readout.card_number, readout.credential) == (plan.card_number, plan.credential)
    assert driver.status(DirectConnection(card), plan.master_keys).state is CardState.personalised
    assert verify_url(cfg, plan.master_keys, driver.prove(DirectConnection(card), b"").payload).uid == UID


def test_no_factory_key_left_after_personalisation(driver: Ntag424Driver, card: Ntag424Card,
                                                   plan: PersonalisationPlan) -> None:
    driver.personalise(DirectConnection(card), plan)
    image = card.to_image()
    assert all(slot["key"] != "00" * 16 for slot in image["keys"])
    assert {slot["version"] for slot in image["keys"]} == {1}
    assert bytes(16).hex().upper() not in {slot["key"] for slot in image["keys"]}


def test_wrong_master_key_fails_verification(driver: Ntag424Driver, card: Ntag424Card,
                                             profile: Profile, cfg: Ntag424Config) -> None:
    plan = make_plan(profile)
    driver.personalise(DirectConnection(card), plan)
    url = driver.prove(DirectConnection(card), b"").payload
    with pytest.raises(CardIntegrityError):
        verify_url(cfg, master_keys(profile, seed=9), url)
    forged = url[:-1] + (b"0" if url[-1:] != b"0" else b"1")
    with pytest.raises(CardIntegrityError):
        verify_url(cfg, plan.master_keys, forged)


def test_wrong_key_read_back_has_no_second_try(driver: Ntag424Driver, card: Ntag424Card,
                                               profile: Profile) -> None:
    driver.personalise(DirectConnection(card), make_plan(profile))
    conn = DirectConnection(card)
    with pytest.raises(WrongKey):
        driver.read_back(conn, master_keys(profile, seed=40))
    authentications = [apdu for apdu in conn.sent if apdu[:2] == b"\x90\x71"]
    assert len(authentications) == 1
    assert card.to_image()["fail"]["total"] == 1


def test_repeated_failures_end_in_delay(driver: Ntag424Driver, card: Ntag424Card,
                                        profile: Profile) -> None:
    driver.personalise(DirectConnection(card), make_plan(profile))
    wrong = master_keys(profile, seed=40)
    for _ in range(3):
        with pytest.raises(WrongKey):
            driver.read_back(DirectConnection(card), wrong)
    with pytest.raises(AuthenticationDelay):
        driver.read_back(DirectConnection(card), make_plan(profile).master_keys)


def test_personalised_card_retry_is_idempotent(driver: Ntag424Driver, card: Ntag424Card,
                                               profile: Profile) -> None:
    plan = make_plan(profile)
    first = driver.personalise(DirectConnection(card), plan)
    assert driver.personalise(DirectConnection(card), plan) == first
    with pytest.raises(CardSpoiled):
        driver.personalise(DirectConnection(card), make_plan(profile, credential=b"other"))


def test_card_with_foreign_keys_is_not_touched(driver: Ntag424Driver, card: Ntag424Card,
                                               profile: Profile) -> None:
    driver.personalise(DirectConnection(card), make_plan(profile, version=7))
    conn = DirectConnection(card)
    report = driver.status(conn, master_keys(profile, version=1))
    assert report.state is CardState.unknown
    with pytest.raises(CardSpoiled):
        driver.personalise(conn, make_plan(profile, version=1))
    assert not [apdu for apdu in conn.sent if apdu[:2] == b"\x90\x71"]  # no trial authentication


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"sun_base_url": None}, ConfigError),
        ({"sun_base_url": "https://x.example/" + "a" * 200}, ConfigError),
        ({"credential": bytes(129)}, MalformedCredential),
        ({"card_number": "9" * 80}, ConfigError),
    ],
)
def test_bad_plans_are_refused_before_any_write(driver: Ntag424Driver, card: Ntag424Card,
                                                profile: Profile, change: dict[str, object],
                                                error: type[Exception]) -> None:
    import dataclasses

    plan = dataclasses.replace(make_plan(profile), **change)  # type: ignore[arg-type]
    before = card.to_image()
    with pytest.raises(error):
        driver.personalise(DirectConnection(card), plan)
    assert card.to_image() == before


def test_missing_master_role_and_version_zero(driver: Ntag424Driver, card: Ntag424Card,
                                              profile: Profile) -> None:
    import dataclasses

    keys = master_keys(profile)
    partial = dataclasses.replace(keys, keys={k: v for k, v in keys.keys.items() if "reserve" not in k})
    with pytest.raises(ConfigError, match="reserve"):
        plan = dataclasses.replace(make_plan(profile), master_keys=partial)
        driver.personalise(DirectConnection(card), plan)
    for version in (0, 256):  # key versions are one byte on the card; 0 means factory
        with pytest.raises(ConfigError, match="version"):
            driver.personalise(DirectConnection(card), make_plan(profile, version=version))


class _NotNtag(Ntag424Card):
    def process(self, apdu: bytes) -> bytes:
        if apdu[:2] == b"\x90\x60":
            return bytes.fromhex("04010133001A05") + b"\x91\xaf"  # a DESFire EV1 first frame
        return super().process(apdu)


def test_other_type4_card_is_unknown(driver: Ntag424Driver) -> None:
    from tests.ntag424.conftest import counting_rng

    card = _NotNtag.blank(uid=UID, rng=counting_rng())
    with pytest.raises(UnknownCard):
        driver.status(DirectConnection(card))


def test_card_holds_exactly_the_keys_the_verifier_derives(driver: Ntag424Driver, card: Ntag424Card,
                                                          profile: Profile, cfg: Ntag424Config) -> None:
    plan = make_plan(profile)
    driver.personalise(DirectConnection(card), plan)
    keys = [bytes.fromhex(slot["key"]) for slot in card.to_image()["keys"]]
    sid = plan.master_keys.system_identifier
    assert keys[1] == cfg.card_key(1, plan.master_keys.keys, uid=b"", system_identifier=sid)
    assert keys[1] == cfg.card_key(1, plan.master_keys.keys, uid=b"\x04" * 7, system_identifier=sid)
    assert keys[2] == cfg.card_key(2, plan.master_keys.keys, uid=UID, system_identifier=sid)
    assert keys[2] != cfg.card_key(2, plan.master_keys.keys, uid=b"\x04" * 7, system_identifier=sid)
    assert len(set(keys)) == 5


def test_slot_with_right_version_but_foreign_key_stops_before_commit(driver: Ntag424Driver,
                                                                     profile: Profile) -> None:
    from tests.ntag424.conftest import counting_rng

    plan = make_plan(profile)
    image = Ntag424Card.blank(uid=UID).to_image()
    image["keys"][3] = {"key": "5A" * 16, "version": plan.master_keys.version}  # another issuer's run
    card = Ntag424Card.from_image(image, rng=counting_rng())
    assert driver.status(DirectConnection(card), plan.master_keys).state is CardState.partial
    with pytest.raises(CardSpoiled, match="before commit"):
        driver.personalise(DirectConnection(card), plan)
    assert card.to_image()["keys"][0] == {"key": "00" * 16, "version": 0}  # point of no return not passed
    assert driver.status(DirectConnection(card), plan.master_keys).state is not CardState.personalised
