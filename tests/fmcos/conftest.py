"""Fixtures for FMCOS tests: the shipped profile, a deterministic RNG, master keys and plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardsvc.drivers.base import MasterKeys, PersonalisationPlan
from cardsvc.drivers.fmcos import FmcosDriver
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.profiles import Profile, load_profile
from cardsvc.profiles.fmcos import FmcosConfig
from tests.support.families import counting_rng

PROFILE_PATH = Path(__file__).resolve().parents[2] / "firmware_profiles" / "fmcos-cpu.toml"
UID = bytes.fromhex("A1B2C3D4")
SYSTEM_ID = b"CN-310101-FTU"
CREDENTIAL = bytes(range(9, 9 + 118))


@pytest.fixture(scope="session")
def profile() -> Profile:
    return load_profile(PROFILE_PATH)


@pytest.fixture(scope="session")
def cfg(profile: Profile) -> FmcosConfig:
    assert isinstance(profile.config, FmcosConfig)
    return profile.config


def master_keys(profile: Profile, version: int = 1, seed: int = 1) -> MasterKeys:
    assert isinstance(profile.config, FmcosConfig)
    roles = [k.master_role for k in profile.config.keys]
    keys = {role: bytes([seed * 16 + i]) * 8 + bytes([seed + i + 0x40]) * 8
            for i, role in enumerate(roles)}
    return MasterKeys(version=version, keys=keys, system_identifier=SYSTEM_ID)


def make_plan(profile: Profile, *, version: int = 1, seed: int = 1,
              card_number: str = "31010100000042",
              credential: bytes = CREDENTIAL) -> PersonalisationPlan:
    return PersonalisationPlan(card_number=card_number, credential=credential,
                               master_keys=master_keys(profile, version, seed))


@pytest.fixture
def plan(profile: Profile) -> PersonalisationPlan:
    return make_plan(profile)


@pytest.fixture
def driver(profile: Profile) -> FmcosDriver:
    return FmcosDriver(profile, rng=counting_rng())


@pytest.fixture
def card() -> FmcosCard:
    return FmcosCard.blank(uid=UID, rng=counting_rng())
