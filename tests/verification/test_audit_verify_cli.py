"""`cardsvc audit verify` checks the end of the log too (review finding: deleting the newest k rows
left a valid chain and the command passed). The head row records the size and last hash at every
append; the table must hold that many rows and its last one must hash to the head's last hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from cardsvc.registry.db import make_engine
from tests.support.cli import Cli, in_process_cli

ROWS = 6


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    invoke = in_process_cli(tmp_path, monkeypatch, capsys)
    assert invoke("init")[0] == 0
    for i in range(ROWS):  # each client creation appends one audit row
        assert invoke("clients", "create", "--label", f"desk {i}", "--role", "clerk")[0] == 0
    return invoke


def sql(tmp_path: Path, statement: str, **params: int) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cardsvc.sqlite3'}")
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def squash(text: str) -> str:
    """The console wraps long lines at its width (anywhere, for Chinese): compare without whitespace."""
    return "".join(text.split())


def shown(err: str, message: str) -> bool:
    return squash(message) in squash(err)


def test_an_intact_log_passes(cli: Cli) -> None:
    code, out, _ = cli("audit", "verify", "--json")
    assert code == 0
    assert json.loads(out)["rows"] == ROWS and json.loads(out)["ok"] is True


@pytest.mark.parametrize("k", [1, 3, ROWS])
def test_deleting_the_newest_rows_is_found(cli: Cli, tmp_path: Path, k: int) -> None:
    sql(tmp_path, "DELETE FROM audit_log WHERE seq >= :n", n=ROWS - k)
    code, out, err = cli("audit", "verify", "--json")
    assert (code, out) == (12, "")
    assert shown(err, f"audit row {ROWS - k}: audit log truncated: the head records {ROWS} rows")
    assert shown(err, f"the table holds {ROWS - k} ({k} missing at the end: seq {ROWS - k}…{ROWS - 1})")
    assert "Traceback" not in err


def test_truncating_and_shrinking_the_head_size_is_found(cli: Cli, tmp_path: Path) -> None:
    sql(tmp_path, "DELETE FROM audit_log WHERE seq >= :n", n=ROWS - 2)
    sql(tmp_path, "UPDATE audit_head SET size = :n", n=ROWS - 2)
    code, _, err = cli("audit", "verify")
    assert code == 12
    assert shown(err, f"audit row {ROWS - 3}: the head's last hash does not match this row (seq {ROWS - 3})")


def test_an_append_after_truncation_breaks_the_chain(cli: Cli, tmp_path: Path) -> None:
    sql(tmp_path, "DELETE FROM audit_log WHERE seq = :n", n=ROWS - 1)
    assert cli("clients", "create", "--label", "later", "--role", "clerk")[0] == 0
    code, _, err = cli("audit", "verify")
    assert code == 12
    # the new row links to the deleted row's hash, with the next sequence number after the gap
    assert shown(err, f"audit row {ROWS - 1}: sequence {ROWS}, expected {ROWS - 1} (seq {ROWS})")


def test_a_tampered_row_is_named_once(cli: Cli, tmp_path: Path) -> None:
    sql(tmp_path, "UPDATE audit_log SET reason = 'revoked' WHERE seq = 2")
    code, _, err = cli("audit", "verify")
    assert code == 12
    assert shown(err, "audit row 2: row content does not match its hash (seq 2)")
    assert squash(err).count(squash("audit row 2")) == 1
