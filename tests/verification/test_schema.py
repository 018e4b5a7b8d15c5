"""Migration 0003_verification matches the verification models (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, text
from sqlmodel import SQLModel

from cardsvc.registry import verification_models
from cardsvc.registry.db import current_revision, head_revision
from tests.verification.world import World

TABLES = {"api_client", "audit_log", "audit_head", "service_point", "service_item", "service_record",
          "partner_base", "programme", "programme_member", "checkin", "challenge", "sun_counter"}


def _ours() -> MetaData:
    assert verification_models  # the import registers the tables
    metadata = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(metadata)
    return metadata


def _diffs(world: World, metadata: MetaData) -> list[str]:
    with world.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    return [str(d) for d in diffs if any(name in str(d) for name in TABLES)]


def test_migration_matches_models(world: World) -> None:
    assert current_revision(world.db.engine) == head_revision()  # later migrations build on 0003
    assert set(_ours().tables) >= TABLES
    assert _diffs(world, _ours()) == []


def test_the_comparison_sees_drift(world: World) -> None:
    metadata = _ours()
    metadata.tables["sun_counter"].append_column(Column("drift", Integer()))
    assert any("drift" in d for d in _diffs(world, metadata))


def test_audit_head_starts_at_genesis(world: World) -> None:
    with world.db.engine.connect() as conn:
        assert conn.execute(text("SELECT size, last_hash FROM audit_head")).one() == (0, bytes(32))
