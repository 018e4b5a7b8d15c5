"""Registry fixtures: each database test runs on SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cardsvc.registry.db import make_engine, session_factory, upgrade_to_head
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.services import OrgService, RegistryService
from tests.support.member_lists import ORGS_CSV
from tests.support.postgres import PostgresServer

NOW = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
DATA_KEY_1 = bytes(range(32))
DATA_KEY_2 = bytes(range(100, 132))
INDEX_KEY = bytes(range(200, 232))



def clock() -> dt.datetime:
    return NOW


@pytest.fixture
def cipher() -> PiiCipher:
    return PiiCipher({1: DATA_KEY_1}, 1, INDEX_KEY)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()  # raises PostgresUnavailable with the reason: never a skip
    try:
        name = server.create_database()
        engine = make_engine(server.url(name))
        upgrade_to_head(engine)
        engine.dispose()
        server.template = name
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        engine = make_engine(url)
        upgrade_to_head(engine)
        engine.dispose()
        return url
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.url(server.create_database(template=server.template))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def service(engine: Engine, cipher: PiiCipher, tmp_path: Path) -> RegistryService:
    service = RegistryService(session_factory(engine), cipher, clock=clock)
    orgs = tmp_path / "orgs.csv"
    orgs.write_text(ORGS_CSV, encoding="utf-8")
    report = OrgService(session_factory(engine)).import_orgs(orgs)
    assert report.problems == () and report.created == 6
    return service
