"""The card tables the migration creates match the SQLModel classes (autogenerate finds no diff)."""

from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData

from cardsvc.registry import cards

CARD_TABLES = ("card_batch", "card_batch_member", "card_number_counter", "card", "card_event", "card_print")
_MENTION = re.compile(
    r"(?:Table\('|table=<)(card(?:_batch|_batch_member|_number_counter|_event|_print)?)['>]")


def card_diffs(engine: Engine, metadata: MetaData) -> list[str]:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    return [repr(d) for d in diff if _MENTION.search(repr(d))]


def models_metadata() -> MetaData:
    metadata = MetaData()
    for table in cards.SQLModel.metadata.sorted_tables:
        table.to_metadata(metadata)
    return metadata


def test_migration_matches_models(engine: Engine) -> None:
    assert card_diffs(engine, models_metadata()) == []


def test_the_comparison_sees_a_drifted_model(engine: Engine) -> None:
    metadata = models_metadata()
    metadata.tables["card"].append_column(Column("drift", Integer()))
    assert any("drift" in d for d in card_diffs(engine, metadata))


def test_one_live_card_per_member_is_a_partial_unique_index(engine: Engine) -> None:
    with engine.connect() as conn:
        sql = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'uq_card_live_member'").scalar_one()
    assert "UNIQUE" in sql.upper() and "WHERE live" in sql
