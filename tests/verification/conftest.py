"""Verification fixtures: every database test runs on SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer
from tests.verification.world import World, make_world, migrate, sqlite_url


@pytest.fixture(scope="session")
def verify_pg() -> Iterator[PostgresServer]:
    server = PostgresServer.start()  # raises with the reason when it cannot start: never a skip
    try:
        name = server.create_database()
        migrate(server.url(name))
        server.template = name
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    server: PostgresServer = request.getfixturevalue("verify_pg")
    return server.url(server.create_database(template=server.template))


@pytest.fixture
def world(world_url: str) -> Iterator[World]:
    with make_world(world_url) as made:
        yield made


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made
