"""No plaintext ID number or phone at rest: grep the raw SQLite files and a PostgreSQL dump."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from cardsvc.registry.db import make_engine, session_factory, upgrade_to_head
from cardsvc.registry.models import Member
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.services import OrgService, RegistryService
from tests.registry.conftest import ORGS_CSV, clock
from tests.support.member_lists import Row, generate, write_csv
from tests.support.postgres import PostgresServer


def _load(url: str, cipher: PiiCipher, tmp_path: Path) -> tuple[list[Row], RegistryService]:
    engine = make_engine(url)
    upgrade_to_head(engine)
    orgs = tmp_path / "orgs.csv"
    orgs.write_text(ORGS_CSV, encoding="utf-8")
    OrgService(session_factory(engine)).import_orgs(orgs)
    rows = [r for r in generate(2000, orgs=("G1", "G2"), seed=5) if r.expected is None]
    path = tmp_path / "members.csv"
    write_csv(path, rows)
    service = RegistryService(session_factory(engine), cipher, clock=clock)
    assert service.import_members(path).created == len(rows)
    with Session(engine) as session:
        stored = session.exec(select(Member.id_index)).all()
    plain_hashes = {hashlib.sha256(r.id_number.encode()).digest() for r in rows if r.id_number}
    assert len(stored) == len(rows) and not {s[0] for s in stored} & plain_hashes  # not a plain hash
    engine.dispose()
    return rows, service


def _secrets(rows: list[Row]) -> list[bytes]:
    values = [r.id_number for r in rows if r.id_number] + [str(r.cells[4]) for r in rows]
    assert len(values) == 2 * len(rows)
    return [v.encode() for v in values]


def _leaks(blob: bytes, secrets: list[bytes]) -> list[bytes]:
    return [s for s in secrets if s in blob]


def test_sqlite_files_hold_no_plaintext(cipher: PiiCipher, tmp_path: Path) -> None:
    database = tmp_path / "rest.sqlite3"
    rows, _ = _load(f"sqlite:///{database}", cipher, tmp_path)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("rest.sqlite3")]
    blob = b"".join(p.read_bytes() for p in files)
    assert len(blob) > 100_000
    names = [str(r.cells[1]).strip().encode() for r in rows[:50]]
    assert any(n in blob for n in names)  # the grep works: names are stored (and erased) in clear
    assert _leaks(blob, _secrets(rows)) == []


@pytest.mark.postgres
def test_postgres_dump_holds_no_plaintext(pg_server: PostgresServer, cipher: PiiCipher,
                                          tmp_path: Path) -> None:
    name = pg_server.create_database()
    rows, _ = _load(pg_server.url(name), cipher, tmp_path)
    dump = pg_server.dump(name)
    assert b"COPY public.member " in dump and len(dump) > 100_000
    assert _leaks(dump, _secrets(rows)) == []
