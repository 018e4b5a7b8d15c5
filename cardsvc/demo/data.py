"""Demo steps 1-3: schema and development keys, the sample registry, reference data (idempotent)."""

from __future__ import annotations

import datetime as dt
import importlib
import shutil
from pathlib import Path
from types import ModuleType

from sqlalchemy import func
from sqlmodel import Session, select

from cardsvc.cli.output import console
from cardsvc.config import Settings
from cardsvc.credential import open_key_store
from cardsvc.demo.base import DEMO_PARTNER_BASE, DEMO_PROGRAMME, cli
from cardsvc.demo_data import MEMBERS, NEW_MEMBERS, ORGS
from cardsvc.issuance.keys import ensure_master_keys, ensure_uid_index
from cardsvc.profiles import load_profiles
from cardsvc.registry.db import engine_for, session_factory
from cardsvc.registry.models import Member, Organisation


def prepare(settings: Settings) -> dict[str, int]:
    """Schema, keys, sample data and reference data; returns what the registry holds."""
    cli("init", "--dev")
    if not open_key_store(settings).issuer_keys():
        cli("keys", "init")
    ensure_card_keys(settings)
    counts = registry_counts(settings)
    if counts["members"] == 0:
        if counts["organisations"] == 0:
            cli("orgs", "import", str(ORGS))
        cli("members", "import", str(MEMBERS))
        counts = registry_counts(settings)
    seed_reference_data(settings)
    copy_samples(settings)
    return counts


def copy_samples(settings: Settings) -> Path:
    """The sample lists, copied to ``<data-dir>/samples`` for the README tour."""
    target = settings.data_dir / "samples"
    target.mkdir(parents=True, exist_ok=True)
    for source in (ORGS, MEMBERS, NEW_MEMBERS):
        shutil.copyfile(source, target / source.name)
    return target


def ensure_card_keys(settings: Settings) -> None:
    """Development card master keys for every shipped profile and the UID index key, before the
    API starts (it loads card keys once), so phone and reader taps verify without a restart."""
    store = open_key_store(settings)
    for profile in load_profiles(settings.effective_profiles_dir).values():
        ensure_master_keys(store, profile)
    ensure_uid_index(store)


def registry_counts(settings: Settings) -> dict[str, int]:
    engine = engine_for(settings)
    try:
        with session_factory(engine)() as session:
            return {"organisations": session.exec(select(func.count()).select_from(Organisation)).one(),
                    "members": session.exec(select(func.count()).select_from(Member)).one()}
    finally:
        engine.dispose()


def seed_reference_data(settings: Settings) -> bool:
    """Service items/points, partner bases and a demo programme, if this version can seed them."""
    try:
        seed = importlib.import_module("cardsvc.verification.seed")
    except ImportError:
        console.print("reference data: no seeding module in this version (skipped)")
        return False
    engine = engine_for(settings)
    try:
        with session_factory(engine)() as session, session.begin():
            seed.seed_reference_data(session)
            if hasattr(seed, "seed_programme"):
                _seed_demo_programme(seed, session)
    finally:
        engine.dispose()
    console.print("reference data: service items, service points, partner bases seeded")
    return True


def _seed_demo_programme(seed: ModuleType, session: Session) -> None:
    today = dt.datetime.now(dt.UTC).date()
    seed.seed_programme(session, code=DEMO_PROGRAMME, base_code=DEMO_PARTNER_BASE,
                        name="北戴河疗休养(示范)", starts_on=today - dt.timedelta(days=1),
                        ends_on=today + dt.timedelta(days=90), quota=20)
