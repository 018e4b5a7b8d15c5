"""NTAG 424 DNA through the real stack: pyscard -> private pcscd -> vpcd -> emulated card."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cardsvc.drivers.base import CardState
from cardsvc.drivers.ntag424 import Ntag424Driver
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.profiles import Profile
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.transport import pcsc
from tests.ntag424.conftest import UID, counting_rng, make_plan, verify_url
from tests.support.families import pull_during_personalisation
from tests.support.pcsc_stack import PcscStack

pytestmark = pytest.mark.pcsc
StackFactory = Callable[[int], PcscStack]


def test_personalise_and_tap_through_pcscd(pcsc_stack: StackFactory, profile: Profile,
                                           cfg: Ntag424Config) -> None:
    stack = pcsc_stack(1)
    card = Ntag424Card.blank(uid=UID, rng=counting_rng())
    stack.emulate([[card]])
    driver, plan = Ntag424Driver(profile), make_plan(profile)
    with pcsc.connect(stack.reader_names[0]) as conn:
        assert profile.matches_atr(conn.atr)
        assert driver.status(conn).state is CardState.factory
        readout = driver.personalise(conn, plan)
        assert (readout.uid, readout.credential) == (UID, plan.credential)
        counters = [verify_url(cfg, plan.master_keys, driver.prove(conn, b"").payload).counter
                    for _ in range(2)]
    assert counters[1] == counters[0] + 1


def test_card_pulled_during_personalisation_then_completed(pcsc_stack: StackFactory, profile: Profile,
                                                           cfg: Ntag424Config) -> None:
    stack = pcsc_stack(1)
    card = Ntag424Card.blank(uid=UID, rng=counting_rng())
    driver, plan = Ntag424Driver(profile), make_plan(profile)
    pull_during_personalisation(stack, card, driver, plan, tear_after=25)
    with pcsc.connect(stack.reader_names[0]) as again:
        assert driver.status(again, plan.master_keys).state is CardState.partial
        assert driver.personalise(again, plan).card_number == plan.card_number
        assert verify_url(cfg, plan.master_keys, driver.prove(again, b"").payload).uid == UID
