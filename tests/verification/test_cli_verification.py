"""`cardsvc clients`, `cardsvc audit verify` (a tampered row is named), `cardsvc seed-verification`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from cardsvc.registry.db import make_engine
from tests.support.cli import Cli, in_process_cli


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    invoke = in_process_cli(tmp_path, monkeypatch, capsys)
    assert invoke("init")[0] == 0
    return invoke


def test_clients_create_list_revoke(cli: Cli) -> None:
    code, out, _ = cli("clients", "create", "--label", "北戴河前台", "--role", "partner",
                       "--partner-base", "base-beidaihe", "--json")
    assert code == 0
    created = json.loads(out)
    assert created["token"].startswith(f"cs_{created['client_id']}_")
    code, out, _ = cli("clients", "list", "--json")
    listed = json.loads(out)
    assert [c["client_id"] for c in listed] == [created["client_id"]]
    assert "token" not in listed[0] and created["token"] not in out
    assert cli("clients", "revoke", created["client_id"])[0] == 0
    assert json.loads(cli("clients", "list", "--json")[1])[0]["revoked"] is True
    assert cli("clients", "revoke", "ffffffffffff")[0] == 9  # NotFound: a registry error


def test_partner_client_needs_a_base(cli: Cli) -> None:
    code, _, err = cli("clients", "create", "--label", "x", "--role", "partner")
    assert code == 9 and "partner_base_id" in err


def _db_path(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'cardsvc.sqlite3'}"


def test_audit_verify_names_the_tampered_row(cli: Cli, tmp_path: Path) -> None:
    for i in range(4):
        assert cli("clients", "create", "--label", f"desk {i}", "--role", "clerk")[0] == 0
    code, out, _ = cli("audit", "verify", "--json")
    assert code == 0 and json.loads(out)["rows"] == 4
    engine = make_engine(_db_path(tmp_path))
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET reason = 'revoked' WHERE seq = 2"))
    engine.dispose()
    code, _, err = cli("audit", "verify")
    assert code == 12
    assert "audit row 2" in err and "seq 2" in err and "does not match" in err


def test_audit_verify_finds_a_deleted_row(cli: Cli, tmp_path: Path) -> None:
    for i in range(3):
        cli("clients", "create", "--label", f"desk {i}", "--role", "clerk")
    engine = make_engine(_db_path(tmp_path))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 1"))
    engine.dispose()
    code, _, err = cli("audit", "verify")
    assert code == 12 and "audit row 1" in err


def test_seed_is_idempotent(cli: Cli, tmp_path: Path) -> None:
    assert cli("seed-verification")[0] == 0
    assert cli("seed-verification")[0] == 0
    engine = make_engine(_db_path(tmp_path))
    with engine.connect() as conn:
        items = conn.execute(text("SELECT count(*) FROM service_item")).scalar_one()
        names = set(conn.execute(text("SELECT name FROM service_item")).scalars())
    engine.dispose()
    assert items == 15 and {"法律咨询", "大病救助", "就业创业服务"} <= names
