"""Erasure reaches the disk: an erased member's name and sealed fields are gone from the SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import select, text
from sqlmodel import Session

from cardsvc.registry.db import make_engine, session_factory, upgrade_to_head
from cardsvc.registry.models import Member
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.services import OrgService, RegistryService
from tests.registry.conftest import ORGS_CSV, clock
from tests.support.member_lists import generate, write_csv


def _platform_default_off(database: Path) -> sqlite3.Connection:
    """A connection as python.org's Windows/macOS builds make it: secure_delete off (Debian's
    SQLite is compiled with it on, which hid the problem here)."""
    connection = sqlite3.connect(database, check_same_thread=False)
    connection.execute("PRAGMA secure_delete=OFF")
    return connection


def test_erased_names_do_not_stay_in_the_sqlite_files(cipher: PiiCipher, tmp_path: Path) -> None:
    """Regression: with secure_delete off SQLite leaves an updated row's old bytes in the page's
    free space, so an erased member's name could still be read from the database file."""
    database = tmp_path / "erase.sqlite3"
    engine = make_engine(f"sqlite:///{database}", creator=lambda: _platform_default_off(database))
    upgrade_to_head(engine)
    orgs = tmp_path / "orgs.csv"
    orgs.write_text(ORGS_CSV, encoding="utf-8")
    OrgService(session_factory(engine)).import_orgs(orgs)
    rows = [r for r in generate(300, orgs=("G1",), seed=11) if r.expected is None]
    write_csv(tmp_path / "members.csv", rows)
    service = RegistryService(session_factory(engine), cipher, clock=clock)
    service.import_members(tmp_path / "members.csv")
    with Session(engine) as session:
        members = session.exec(select(Member.public_id, Member.name, Member.id_sealed)).all()
    names = {name for _, name, _ in members}
    erased = [(public_id, name, sealed) for public_id, name, sealed in members
              if len(name) >= 3 and sum(n == name for n in names) == 1][:20]
    for public_id, _, _ in erased:
        service.erase(public_id)
    with engine.connect() as connection:  # what a checkpoint (automatic, sooner or later) leaves
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("erase.sqlite3"))
    assert any(name.encode() in blob for _, name, _ in members[-5:] if name not in {e[1] for e in erased})
    left = [name for _, name, sealed in erased if name.encode() in blob or (sealed and sealed in blob)]
    assert left == []
