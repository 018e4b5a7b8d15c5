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
from tests.support.postgres import PostgresServer

NOW = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
DATA_KEY_1 = bytes(range(32))
DATA_KEY_2 = bytes(range(100, 132))
INDEX_KEY = bytes(range(200, 232))
TEMPLATE_DB = "cardsvc_template"

ORGS_CSV = """编码,名称,类型,上级编码,统一社会信用代码,联系人
D01,某区总工会,区总工会,,,
T01,城关镇总工会,镇总工会,D01,,
P01,高新园区工会,园区工会,D01,,
G1,城关镇第一机械厂工会,企业工会,T01,91350100M000100Y43,
G2,城关镇农贸市场工会联合会,市场工会联合会,T01,,
G3,第三工会,项目工会,P01,,
"""


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
