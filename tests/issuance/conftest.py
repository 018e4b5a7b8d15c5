"""Issuance fixtures: a migrated SQLite database with members, a fast key store, the NTAG profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cardsvc.profiles import Profile
from tests.issuance.support import Desk, key_store, migrated_engine, profile, seed_members


@pytest.fixture(scope="session")
def ntag_profile() -> Profile:
    return profile("ntag424-dna")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_engine(f"sqlite:///{tmp_path / 'issuance.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture
def desk(engine: Engine, tmp_path: Path, ntag_profile: Profile) -> Desk:
    seed_members(engine, 5)
    return Desk(engine, key_store(tmp_path / "keys", ntag_profile), ntag_profile)
