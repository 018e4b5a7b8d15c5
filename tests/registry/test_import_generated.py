"""The generated 20,000-row list: exact report, idempotent re-import, CSV encodings, kill and re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from cardsvc.registry.importer import ImportReport
from cardsvc.registry.models import Member, MemberEvent
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.report import write_report
from cardsvc.registry.services import RegistryService
from tests.support.member_lists import Row, generate, write_csv, write_xlsx

ORG_VALUES = ("G1", "G2", "第三工会")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big_rows() -> list[Row]:
    return list(generate(20_000, orgs=ORG_VALUES, empty_every=4000))


@pytest.fixture(scope="module")
def big_list(big_rows: list[Row], tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Row], Path]:
    path = tmp_path_factory.mktemp("lists") / "members.xlsx"
    write_xlsx(path, big_rows)
    return big_rows, path


@pytest.fixture(scope="module")
def big_csv(big_rows: list[Row], tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Row], Path]:
    path = tmp_path_factory.mktemp("lists") / "members.csv"
    write_csv(path, big_rows, encoding="gb18030")
    return big_rows, path


def expected(rows: list[Row], fmt: str) -> list[tuple[int, str, str]]:
    return sorted((r.number, *e) for r in rows if (e := r.expected_in(fmt)) is not None)


def problems(report: ImportReport) -> list[tuple[int, str, str]]:
    return sorted((p.row, p.field, p.reason) for p in report.problems)


def members_in_db(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Member)).one()[0])


def stored_indexes(engine: Engine) -> set[bytes]:
    with Session(engine) as session:
        return {row[0] for row in session.exec(select(Member.id_index))}


def expected_indexes(rows: list[Row], cipher: PiiCipher) -> set[bytes]:
    return {cipher.blind_index(r.id_number, field="id_number") for r in rows if r.id_number}


@pytest.mark.slow
def test_20000_row_xlsx_exact_report_and_idempotent(service: RegistryService, engine: Engine,
                                                    cipher: PiiCipher, big_list, tmp_path: Path) -> None:
    rows, path = big_list
    report = service.import_members(path)
    valid = [r for r in rows if r.expected is None]
    assert problems(report) == expected(rows, "xlsx")
    assert report.rows_read == 20_000 and report.rejected_rows == 20_000 - len(valid)
    assert (report.created, report.updated, report.unchanged) == (len(valid), 0, 0)
    assert stored_indexes(engine) == expected_indexes(rows, cipher)
    write_report(report, tmp_path / "report.csv")
    lines = (tmp_path / "report.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 + len(report.problems) + 1 + 7
    again = service.import_members(path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(valid))
    assert problems(again) == expected(rows, "xlsx")
    with Session(engine) as session:
        events = session.exec(select(func.count()).select_from(MemberEvent)).one()[0]
    assert events == len(valid)  # the no-op re-import wrote nothing


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_csv_encodings_give_the_same_result(service: RegistryService, engine: Engine, cipher: PiiCipher,
                                            tmp_path: Path, encoding: str) -> None:
    rows = list(generate(1500, orgs=ORG_VALUES, seed=7))
    path = tmp_path / "members.csv"
    write_csv(path, rows, encoding=encoding)
    report = service.import_members(path)
    assert problems(report) == expected(rows, "csv")
    assert stored_indexes(engine) == expected_indexes(rows, cipher)
    names = {m.name for m in service.list_members(limit=2000)}
    assert all("*" in n or len(n) == 1 for n in names)  # masked on the way out


def test_changes_are_upserted_and_other_orgs_refused(service: RegistryService, engine: Engine,
                                                     tmp_path: Path) -> None:
    rows = list(generate(300, orgs=("G1",), seed=11, defect_rate=0))
    first = tmp_path / "first.csv"
    write_csv(first, rows)
    assert service.import_members(first).created == 300
    changed = [Row(r.number, (*r.cells[:4], "13900000000", *r.cells[5:]), r.id_number, None, None)
               if r.number % 10 == 0 else r for r in rows]
    moved = [Row(r.number, (*r.cells[:5], "G2", *r.cells[6:]), r.id_number, None, None)
             if r.number % 25 == 1 else r for r in changed]
    second = tmp_path / "second.csv"
    write_csv(second, moved)
    report = service.import_members(second)
    n_changed = sum(1 for r in rows if r.number % 10 == 0 and r.number % 25 != 1)
    n_moved = sum(1 for r in rows if r.number % 25 == 1)
    assert (report.created, report.updated) == (0, n_changed)
    assert report.unchanged == 300 - n_changed - n_moved
    assert {p.reason for p in report.problems} == {"registered_elsewhere"}
    assert sorted(p.row for p in report.problems) == sorted(r.number for r in rows if r.number % 25 == 1)
    assert members_in_db(engine) == 300


def test_dry_run_writes_nothing(service: RegistryService, engine: Engine, tmp_path: Path) -> None:
    rows = list(generate(500, orgs=ORG_VALUES, seed=3))
    path = tmp_path / "members.csv"
    write_csv(path, rows)
    report = service.import_members(path, dry_run=True)
    assert report.dry_run and report.created == sum(1 for r in rows if r.expected is None)
    assert members_in_db(engine) == 0


def test_org_option_fills_rows_without_org(service: RegistryService, tmp_path: Path) -> None:
    path = tmp_path / "g3.csv"
    path.write_text("姓名,身份证号\n张三,11010519491231002X\n李四,360426199101010071\n", encoding="utf-8")
    assert service.import_members(path, org_code="G3").created == 2
    assert {m.org_code for m in service.list_members()} == {"G3"}


def test_federation_and_unknown_org_rows_are_rejected(service: RegistryService, tmp_path: Path) -> None:
    path = tmp_path / "orgs.csv"
    path.write_text("姓名,身份证号,工会\n张三,11010519491231002X,T01\n李四,360426199101010071,不存在\n",
                    encoding="utf-8")
    report = service.import_members(path)
    assert problems(report) == [(2, "工会", "org_is_federation"), (3, "工会", "unknown_org")]


@pytest.mark.slow
def test_kill_during_import_then_rerun(service: RegistryService, engine: Engine, cipher: PiiCipher,
                                       db_url: str, big_csv) -> None:
    rows, path = big_csv
    seen = 0
    with subprocess.Popen(
        [sys.executable, "-m", "tests.registry.kill_worker", db_url, str(path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as worker:
        assert worker.stdout is not None
        for line in worker.stdout:
            if line.startswith("progress") and int(line.split()[1]) >= 8000:
                seen = int(line.split()[1])
                os.kill(worker.pid, signal.SIGKILL)
                break
        code = worker.wait(timeout=60)
    assert code == -signal.SIGKILL and seen >= 8000, "killed mid-import"
    assert members_in_db(engine) == 0  # one transaction: nothing half-imported
    report = service.import_members(path)
    assert problems(report) == expected(rows, "csv")
    assert stored_indexes(engine) == expected_indexes(rows, cipher)
