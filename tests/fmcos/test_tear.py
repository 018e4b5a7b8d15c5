"""The tear test: power is cut during every APDU of personalisation, one index at a time.

For each k: the card is removed during APDU k (CardRemoved), the status probe must classify what
is really on the card (read from the emulator image, independently of the driver), and a retry on
the reinserted card must either complete — then read-back and a live proof verify — or raise
CardSpoiled. Never a card that looks personalised but fails verification, and never an
authentication failure spent on the way.
"""

from __future__ import annotations

from typing import Any

import pytest

from cardsvc.cardcrypto.fmcos import TDES, verify_internal_auth
from cardsvc.drivers.base import CardState, PersonalisationPlan
from cardsvc.drivers.fmcos import FmcosDriver
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.errors import CardRemoved, CardSpoiled
from cardsvc.profiles.fmcos import FmcosConfig
from tests.fmcos.conftest import UID, counting_rng
from tests.support.cards import DirectConnection


def clean_run_length(driver: FmcosDriver, plan: PersonalisationPlan) -> int:
    conn = DirectConnection(FmcosCard.blank(uid=UID, rng=counting_rng()))
    driver.personalise(conn, plan)
    return len(conn.sent)


def truth(card: FmcosCard, cfg: FmcosConfig) -> CardState:
    """What the card really is, read from its image (not through the driver)."""
    app = _find_df(card.to_image()["mf"], cfg.application.df_name.hex().upper())
    if app is None:
        return CardState.factory
    status_fid = f"{cfg.file('status').fid:04X}"
    marker = next((bytes.fromhex(e["data"]) for e in app["efs"] if e["fid"] == status_fid), b"")
    return CardState.personalised if marker[:2] == b"\x02\xfd" else CardState.partial


def _find_df(node: dict[str, Any], name: str) -> dict[str, Any] | None:
    if node["name"] == name:
        return node
    return next((f for d in node["dfs"] if (f := _find_df(d, name)) is not None), None)


def counters_untouched(card: FmcosCard) -> bool:
    """Every external-auth key still has all its attempts: no wrong key was ever tried."""
    def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
        keys = node["key_file"]["keys"] if node["key_file"] else []
        return keys + [k for d in node["dfs"] for k in walk(d)]
    return all(k["fourth"][0] == k["fourth"][1] for k in walk(card.to_image()["mf"])
               if k["type"] == "39")


def verify_card(driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan,
                cfg: FmcosConfig) -> None:
    readout = driver.read_back(DirectConnection(card), plan.master_keys)
    assert (readout.card_number, readout.credential) == (plan.card_number, plan.credential)
    challenge = bytes(range(0xA0, 0xA8))
    proof = driver.prove(DirectConnection(card), challenge)
    slot = cfg.key("internal_auth")
    key = slot.derive(plan.master_keys.keys[slot.master_role], uid=UID,
                      aid=cfg.diversification_aid,
                      system_identifier=plan.master_keys.system_identifier, cipher_suite="tdes")
    verify_internal_auth(TDES, key, challenge, proof.payload)
    mf_slot = cfg.key("mf_admin")
    mf_expected = mf_slot.derive(plan.master_keys.keys[mf_slot.master_role], uid=UID,
                                 aid=cfg.diversification_aid,
                                 system_identifier=plan.master_keys.system_identifier,
                                 cipher_suite="tdes")
    assert card.to_image()["mf"]["key_file"]["keys"][0]["value"] == mf_expected.hex().upper()


def test_every_tear_point_recovers_or_spoils_honestly(
        driver: FmcosDriver, plan: PersonalisationPlan, cfg: FmcosConfig) -> None:
    total = clean_run_length(driver, plan)
    assert total > 30
    outcomes: dict[str, int] = {"completed": 0, "spoiled": 0}
    for k in range(total):
        card = FmcosCard.blank(uid=UID, rng=counting_rng())
        conn = DirectConnection(card, tear_at=k)
        with pytest.raises(CardRemoved):
            driver.personalise(conn, plan)
        report = driver.status(conn.reinsert())
        assert report.state is truth(card, cfg), f"tear at {k}: {report}"
        try:
            driver.personalise(conn.reinsert(), plan)
        except CardSpoiled:
            outcomes["spoiled"] += 1
            assert driver.status(conn.reinsert()).state is not CardState.personalised
            continue
        outcomes["completed"] += 1
        assert driver.status(conn.reinsert(), plan.master_keys).state is CardState.personalised
        verify_card(driver, card, plan, cfg)
        assert counters_untouched(card), f"tear at {k} cost an authentication attempt"
    assert outcomes == {"completed": total, "spoiled": 0}


def test_a_second_tear_during_the_retry_still_recovers(
        driver: FmcosDriver, plan: PersonalisationPlan, cfg: FmcosConfig) -> None:
    total = clean_run_length(driver, plan)
    for first in range(1, total, 4):
        card = FmcosCard.blank(uid=UID, rng=counting_rng())
        with pytest.raises(CardRemoved):
            driver.personalise(DirectConnection(card, tear_at=first), plan)
        image = card.to_image()
        retry_length = len(_run(driver, FmcosCard.from_image(image), plan).sent)
        for second in range(retry_length):
            again = FmcosCard.from_image(image, rng=counting_rng())
            with pytest.raises(CardRemoved):
                driver.personalise(DirectConnection(again, tear_at=second), plan)
            assert driver.status(DirectConnection(again)).state is truth(again, cfg)
            driver.personalise(DirectConnection(again), plan)
            verify_card(driver, again, plan, cfg)
            assert counters_untouched(again), f"tears at {first}, {second} cost an attempt"


def _run(driver: FmcosDriver, card: FmcosCard, plan: PersonalisationPlan) -> DirectConnection:
    conn = DirectConnection(card)
    driver.personalise(conn, plan)
    return conn
