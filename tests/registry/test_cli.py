"""`cardsvc init`, `cardsvc orgs …` and `cardsvc members …` end to end, in process, on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.registry.conftest import ORGS_CSV
from tests.support.cli import Cli, in_process_cli
from tests.support.member_lists import generate, write_xlsx


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    return in_process_cli(tmp_path, monkeypatch, capsys)


def test_members_workflow(cli, tmp_path: Path) -> None:
    code, out, _ = cli("init", "--dev", "--json")
    assert code == 0 and json.loads(out)["pii_data_key_version"] == 1
    (tmp_path / "orgs.csv").write_text(ORGS_CSV, encoding="utf-8")
    assert cli("orgs", "import", str(tmp_path / "orgs.csv"))[0] == 0
    code, out, _ = cli("orgs", "list", "--json")
    assert {o["code"] for o in json.loads(out)} == {"D01", "T01", "P01", "G1", "G2", "G3"}

    rows = list(generate(300, orgs=("G1", "G2"), seed=9))
    write_xlsx(tmp_path / "members.xlsx", rows)
    valid = sum(1 for r in rows if r.expected is None)
    code, out, _ = cli("members", "import", str(tmp_path / "members.xlsx"), "--dry-run", "--json")
    assert code == 0 and json.loads(out)["created"] == valid and json.loads(out)["dry_run"] is True
    code, out, _ = cli("members", "import", str(tmp_path / "members.xlsx"), "--report",
                       str(tmp_path / "report.xlsx"))
    assert code == 0 and f"{valid} created" in out
    book = load_workbook(tmp_path / "report.xlsx")
    lines = [tuple(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    problem_rows = {line[0] for line in lines[1:] if line and isinstance(line[0], int)}
    assert problem_rows == {r.number for r in rows if r.expected is not None}

    code, out, _ = cli("members", "list", "--org", "G1", "--json", "--limit", "5")
    listed = json.loads(out)
    assert code == 0 and 0 < len(listed) <= 5 and all("*" in m["id_number"] for m in listed)
    public_id = listed[0]["public_id"]
    code, out, _ = cli("members", "transfer", public_id, "--to", "G3", "--on", "2025-01-02", "--json")
    assert code == 0 and json.loads(out)["org_code"] == "G3"
    assert cli("members", "rekey")[0] == 0
    code, out, _ = cli("members", "show", public_id, "--json")
    assert code == 0 and json.loads(out)["org_code"] == "G3"
    assert cli("members", "erase", public_id, "--yes")[0] == 0
    code, out, _ = cli("members", "show", public_id, "--json")
    assert json.loads(out)["status"] == "erased" and json.loads(out)["id_number"] == ""
    for row in rows:
        if row.id_number:
            assert row.id_number not in out


def test_errors_map_to_exit_codes(cli, tmp_path: Path) -> None:
    assert cli("init")[0] == 0
    code, _, err = cli("members", "list")
    assert code == 8 and "PII keys" in err  # no keys yet: KeyStoreError
    assert cli("init", "--dev")[0] == 0
    code, _, err = cli("members", "show", "0" * 32)
    assert code == 9 and "no member" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("姓名\n张三\n", encoding="utf-8")
    code, _, err = cli("members", "import", str(bad))
    assert code == 9 and "missing required columns" in err
    (tmp_path / "orgs.csv").write_text("编码,名称,类型,上级编码\nG1,某工会,企业工会,NOPE\n", encoding="utf-8")
    code, out, _ = cli("orgs", "import", str(tmp_path / "orgs.csv"))
    assert code == 9 and "unknown_parent" in out


def test_dev_keys_are_refused_in_production(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSVC_ENV", "production")
    monkeypatch.setenv("CARDSVC_KEY_PASSPHRASE", "a real secret")
    code, _, err = cli("init", "--dev")
    assert code == 3 and "--dev" in err


def test_commands_refuse_a_database_behind_head(cli) -> None:
    code, _, err = cli("orgs", "list")
    assert code == 3 and "cardsvc init" in err
