"""The shipped card families through the real stack: profiles match, personalise + read back, tear.

Uses the shipped firmware profiles, the family emulators and drivers (owned by the card-family
engineers) — this file only checks that they work over pyscard -> pcscd -> vpcd.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cardsvc.cli.main import build_app
from cardsvc.config import get_settings
from cardsvc.drivers.base import MasterKeys, PersonalisationPlan, driver_for
from cardsvc.emulator.images import factory_for, image_path, load_image, save_image
from cardsvc.emulator.runtime import Faults
from cardsvc.errors import CardRemoved
from cardsvc.issuance.keys import master_roles
from cardsvc.profiles import Profile, load_profiles
from cardsvc.transport import pcsc

pytestmark = pytest.mark.pcsc

FAMILIES = ("ntag424-dna", "fmcos-cpu")


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles(get_settings().effective_profiles_dir)


def _plan(profile: Profile) -> PersonalisationPlan:
    keys = {role: bytes([i + 1]) * 16 for i, role in enumerate(master_roles(profile))}
    return PersonalisationPlan(card_number="31010100000042", credential=bytes(range(100)),
                               master_keys=MasterKeys(1, keys, b"CN-310101-FTU"),
                               sun_base_url="https://verify.example.cn/t")


def test_readers_json_matches_both_family_profiles(pcsc_stack, profiles, monkeypatch) -> None:
    monkeypatch.delenv("CARDSVC_PROFILES_DIR", raising=False)
    stack = pcsc_stack(2)
    stack.emulate([[factory_for(profiles[name].family).blank()] for name in FAMILIES])
    result = CliRunner().invoke(build_app(), ["readers", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["profiles"] for r in rows] == [["ntag424-dna"], ["fmcos-cpu"]]


@pytest.mark.parametrize("name", FAMILIES)
def test_personalise_and_read_back_over_pcsc(pcsc_stack, profiles, tmp_path, name: str) -> None:
    profile = profiles[name]
    card = factory_for(profile.family).blank()
    stack = pcsc_stack(1)
    stack.emulate([[card]])
    driver, plan = driver_for(profile), _plan(profile)
    with pcsc.connect(stack.reader_names[0]) as conn:
        written = driver.personalise(conn, plan)
    with pcsc.connect(stack.reader_names[0]) as conn:
        readout = driver.read_back(conn, plan.master_keys)
    assert readout == written
    assert (readout.uid, readout.card_number, readout.credential) == (card.uid, plan.card_number,
                                                                      plan.credential)
    # The saved image is the personalised card: reload it on the reader and read it back again.
    stack.slot(0).remove()
    pcsc.wait_for_removal(stack.reader_names[0], 3.0)
    reloaded = load_image(save_image(card, image_path(tmp_path, 0, 1, card.uid)))
    stack.slot(0).insert(reloaded)
    pcsc.wait_for_card(stack.reader_names[0], 3.0)
    with pcsc.connect(stack.reader_names[0]) as conn:
        assert driver.read_back(conn, plan.master_keys) == written


@pytest.mark.parametrize("name", FAMILIES)
def test_card_pulled_during_personalisation(pcsc_stack, profiles, name: str) -> None:
    profile = profiles[name]
    stack = pcsc_stack(1)
    stack.emulate([[factory_for(profile.family).blank()]], faults=Faults(tear_after=7))
    with pcsc.connect(stack.reader_names[0]) as conn, pytest.raises(CardRemoved):
        driver_for(profile).personalise(conn, _plan(profile))
