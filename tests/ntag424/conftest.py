"""Fixtures for NTAG 424 DNA tests: the shipped profile, a deterministic RNG, plans and keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardsvc.cardcrypto import sun
from cardsvc.drivers.base import MasterKeys, PersonalisationPlan
from cardsvc.drivers.ntag424 import Ntag424Driver
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.profiles import Profile, load_profile
from cardsvc.profiles.ntag424 import Ntag424Config
from tests.support.families import counting_rng

PROFILE_PATH = Path(__file__).resolve().parents[2] / "firmware_profiles" / "ntag424-dna.toml"
UID = bytes.fromhex("04A1B2C3D4E5F6")
SYSTEM_ID = b"CN-310101-FTU"


@pytest.fixture(scope="session")
def profile() -> Profile:
    return load_profile(PROFILE_PATH)


@pytest.fixture(scope="session")
def cfg(profile: Profile) -> Ntag424Config:
    assert isinstance(profile.config, Ntag424Config)
    return profile.config


def master_keys(profile: Profile, version: int = 1, seed: int = 1) -> MasterKeys:
    assert isinstance(profile.config, Ntag424Config)
    roles = [k.master for k in profile.config.keys]
    keys = {role: bytes([seed + i]) * 16 for i, role in enumerate(roles)}
    return MasterKeys(version=version, keys=keys, system_identifier=SYSTEM_ID)


def make_plan(profile: Profile, *, version: int = 1, seed: int = 1,
              credential: bytes = bytes(range(7, 7 + 121))) -> PersonalisationPlan:
    return PersonalisationPlan(card_number="31010100000042", credential=credential,
                               master_keys=master_keys(profile, version, seed),
                               sun_base_url="https://verify.example.cn/t")


@pytest.fixture
def plan(profile: Profile) -> PersonalisationPlan:
    return make_plan(profile)


@pytest.fixture
def driver(profile: Profile) -> Ntag424Driver:
    return Ntag424Driver(profile, rng=counting_rng())


@pytest.fixture
def card() -> Ntag424Card:
    return Ntag424Card.blank(uid=UID, rng=counting_rng())


def verify_url(cfg: Ntag424Config, keys: MasterKeys, url: bytes) -> sun.SunReading:
    """What the verifier does with a tapped URL: no driver, only profile + cardcrypto."""
    return cfg.verify_sun_url(url.decode("ascii"), keys.keys, system_identifier=keys.system_identifier)
