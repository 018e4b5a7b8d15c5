"""FMCOS through the real stack: pyscard -> private pcscd -> vpcd -> emulated FM1208 card."""

from __future__ import annotations

import pytest

from cardsvc.cardcrypto.fmcos import TDES, verify_internal_auth
from cardsvc.drivers.base import CardState
from cardsvc.drivers.fmcos import FmcosDriver
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.profiles import Profile
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.transport import pcsc
from tests.fmcos.conftest import UID, counting_rng, make_plan
from tests.support.families import pull_during_personalisation

pytestmark = pytest.mark.pcsc


def test_personalise_and_prove_through_pcscd(pcsc_stack, profile: Profile,
                                             cfg: FmcosConfig) -> None:
    stack = pcsc_stack(1)
    stack.emulate([[FmcosCard.blank(uid=UID, rng=counting_rng())]])
    driver, plan = FmcosDriver(profile), make_plan(profile)
    with pcsc.connect(stack.reader_names[0]) as conn:
        assert profile.matches_atr(conn.atr)
        assert driver.read_uid(conn) == UID
        assert driver.status(conn).state is CardState.factory
        readout = driver.personalise(conn, plan)
        assert (readout.uid, readout.credential) == (UID, plan.credential)
        proof = driver.prove(conn, bytes(range(8)))
    master = plan.master_keys.keys["fmcos_internal_auth"]
    key = cfg.card_key("internal_auth", master, uid=UID,
                       system_identifier=plan.master_keys.system_identifier)
    verify_internal_auth(TDES, key, proof.challenge, proof.payload)


def test_card_pulled_during_personalisation_then_completed(pcsc_stack, profile: Profile) -> None:
    stack = pcsc_stack(1)
    card = FmcosCard.blank(uid=UID, rng=counting_rng())
    driver, plan = FmcosDriver(profile), make_plan(profile)
    # APDU 35: GET CHALLENGE of the ADF re-authentication after the MF key swap, before COMPLETE
    pull_during_personalisation(stack, card, driver, plan, tear_after=35)
    with pcsc.connect(stack.reader_names[0]) as again:
        assert driver.status(again, plan.master_keys).state is CardState.partial
        assert driver.personalise(again, plan).card_number == plan.card_number
        assert driver.status(again, plan.master_keys).state is CardState.personalised
