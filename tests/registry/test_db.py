"""Engine settings, migrations and schema/model agreement on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from cardsvc.config import get_settings
from cardsvc.errors import ConfigError
from cardsvc.registry import models
from cardsvc.registry.db import (
    current_revision,
    engine_for,
    head_revision,
    make_engine,
    normalise_url,
    require_head,
    upgrade_to_head,
)
from cardsvc.registry.models import Member, Organisation, OrgKind

REGISTRY_TABLES = {"organisation", "member_category_kind", "member_category", "member", "membership_transfer",
                   "consent", "member_event"}


def test_schema_is_at_head_and_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    require_head(engine)
    ours = MetaData()
    for name in REGISTRY_TABLES:
        SQLModel.metadata.tables[name].to_metadata(ours)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, ours) if _registry_diff(d)]
    assert diff == []
    assert models.Category.__tablename__ == "member_category_kind"


def _registry_diff(entry: object) -> bool:
    """Keep every difference about our tables; ignore tables other packages' migrations add."""
    if isinstance(entry, list):  # modify_* groups: (op, schema, table, column, …)
        return any(item[2] in REGISTRY_TABLES for item in entry)
    kind, obj = entry[0], entry[1]  # type: ignore[index]
    if kind in ("remove_table", "add_table"):
        return obj.name in REGISTRY_TABLES
    if kind in ("remove_index", "add_index", "add_constraint", "remove_constraint"):
        return obj.table.name in REGISTRY_TABLES
    return True


def test_upgrade_is_idempotent(engine: Engine) -> None:
    assert upgrade_to_head(engine) == head_revision()


def test_categories_are_seeded(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, label FROM member_category_kind ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("model_worker", "劳模"), ("advanced_worker", "先进职工"),
                                        ("frontline_worker", "一线职工"), ("migrant_worker", "农民工")]


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(IntegrityError):
        session.add(Member(name="张三", org_id=999_999))
        session.flush()


def test_timestamps_come_back_aware_utc(engine: Engine) -> None:
    stamp = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with Session(engine) as session:
        org = Organisation(code="X1", name="某企业工会", kind=OrgKind.enterprise_union)
        session.add(org)
        session.flush()
        member = Member(name="张三", org_id=org.id, created_at=stamp, updated_at=stamp)
        session.add(member)
        session.commit()
        session.expire_all()
        loaded = session.get(Member, member.id)
        assert loaded is not None and loaded.created_at == stamp and loaded.created_at.tzinfo == dt.UTC


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with Session(engine) as session:
        org = Organisation(code="X2", name="某企业工会", kind=OrgKind.enterprise_union)
        session.add(org)
        session.flush()
        session.add(Member(name="张三", org_id=org.id, created_at=dt.datetime(2025, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as conn:
        values = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                  ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")]
    engine.dispose()
    assert values == ["wal", 2, 1, 10_000]


def test_require_head_refuses_an_empty_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(ConfigError, match="schema is at nothing") as info:
        require_head(engine)
    assert "cardsvc init" in info.value.diagnostics()
    engine.dispose()


def test_urls() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x") == "sqlite:///x"
    with pytest.raises(ConfigError, match="unsupported"):
        make_engine("mysql://u@h/db")
    with pytest.raises(ConfigError, match="not understood"):
        make_engine("not a url")


def test_engine_for_creates_the_data_directory(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "new" / "var")
    engine = engine_for(settings)
    assert (tmp_path / "new" / "var").is_dir()
    engine.dispose()
