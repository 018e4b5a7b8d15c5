"""The tear test: power is cut during every single APDU of personalisation, in turn.

For each index k: the host sees CardRemoved; the free status probe then classifies the card as the
card's own memory says it is; a retry on the reinserted card always completes personalisation, and
the result reads back and verifies by SUN (key 0 changes last, so no single tear can spoil a card).
"""

from __future__ import annotations

import pytest

from cardsvc.drivers.base import CardState
from cardsvc.drivers.ntag424 import Ntag424Driver
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.errors import CardRemoved
from cardsvc.profiles import Profile, load_profile
from cardsvc.profiles.ntag424 import Ntag424Config
from tests.ntag424.conftest import PROFILE_PATH, UID, counting_rng, make_plan, verify_url
from tests.support.cards import DirectConnection


def _personalisation_length(profile: Profile) -> int:
    conn = DirectConnection(Ntag424Card.blank(uid=UID, rng=counting_rng()))
    Ntag424Driver(profile, rng=counting_rng()).personalise(conn, make_plan(profile))
    return len(conn.sent)


def _true_state(card: Ntag424Card) -> CardState:
    image = card.to_image()
    if image["keys"][0]["version"] != 0:
        return CardState.personalised
    factory = Ntag424Card.blank(uid=UID).to_image()
    image.pop("fail"), factory.pop("fail")
    return CardState.factory if image == factory else CardState.partial



TOTAL = _personalisation_length(load_profile(PROFILE_PATH))


def test_personalisation_is_long_enough_to_matter(profile: Profile) -> None:
    assert _personalisation_length(profile) == TOTAL > 30


@pytest.mark.parametrize("k", range(TOTAL))
def test_tear_at_every_apdu(k: int, profile: Profile, cfg: Ntag424Config) -> None:
    plan = make_plan(profile)
    card = Ntag424Card.blank(uid=UID, rng=counting_rng())
    driver = Ntag424Driver(profile, rng=counting_rng())
    conn = DirectConnection(card, tear_at=k)
    with pytest.raises(CardRemoved):
        driver.personalise(conn, plan)

    probe_conn = conn.reinsert()
    report = driver.status(probe_conn, plan.master_keys)
    assert report.state is _true_state(card)
    assert not [a for a in probe_conn.sent if a[:2] in (b"\x90\x71", b"\x90\xaf") and len(a) > 6]

    readout = driver.personalise(probe_conn.reinsert(), plan)  # one tear never spoils a card
    assert (readout.card_number, readout.credential) == (plan.card_number, plan.credential)
    check = DirectConnection(card)
    assert driver.read_back(check, plan.master_keys) == readout
    reading = verify_url(cfg, plan.master_keys, driver.prove(check, b"").payload)
    assert reading.uid == UID
    assert driver.status(DirectConnection(card), plan.master_keys).state is CardState.personalised


def test_tears_reach_every_state(profile: Profile) -> None:
    states = set()
    for k in range(TOTAL):
        card = Ntag424Card.blank(uid=UID, rng=counting_rng())
        with pytest.raises(CardRemoved):
            Ntag424Driver(profile, rng=counting_rng()).personalise(DirectConnection(card, tear_at=k),
                                                                   make_plan(profile))
        states.add(_true_state(card))
    assert states == {CardState.factory, CardState.partial, CardState.personalised}


@pytest.mark.parametrize("k", range(0, TOTAL, 7))
def test_a_second_tear_during_the_retry(k: int, profile: Profile, cfg: Ntag424Config) -> None:
    plan, card = make_plan(profile), Ntag424Card.blank(uid=UID, rng=counting_rng())
    driver = Ntag424Driver(profile, rng=counting_rng())
    with pytest.raises(CardRemoved):
        driver.personalise(DirectConnection(card, tear_at=k), plan)
    second = DirectConnection(card, tear_at=13 + (k * 5) % 25)  # past the probe, into the writes
    try:
        driver.personalise(second, plan)
    except CardRemoved:
        assert second.removed
    else:
        assert _true_state(card) is CardState.personalised  # the short confirm-only path
    readout = driver.personalise(DirectConnection(card), plan)
    assert readout.credential == plan.credential
    assert verify_url(cfg, plan.master_keys, driver.prove(DirectConnection(card), b"").payload).uid == UID


class _KeyChangeLost(Ntag424Card):
    """The other legal outcome of an atomic ChangeKey torn mid-way: not applied at all."""

    def tear(self, apdu: bytes) -> None:
        if apdu[:2] == b"\x90\xc4":
            self.power_on()
            return
        super().tear(apdu)


def test_torn_key_change_that_did_not_happen(profile: Profile, cfg: Ntag424Config) -> None:
    plan = make_plan(profile)
    for k in range(TOTAL):
        card = _KeyChangeLost.blank(uid=UID, rng=counting_rng())
        driver = Ntag424Driver(profile, rng=counting_rng())
        with pytest.raises(CardRemoved):
            driver.personalise(DirectConnection(card, tear_at=k), plan)
        assert driver.personalise(DirectConnection(card), plan).credential == plan.credential
        assert verify_url(cfg, plan.master_keys, driver.prove(DirectConnection(card), b"").payload).uid == UID
