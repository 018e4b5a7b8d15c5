"""A print is on disk only if it is recorded (review finding: the PDF/QR files were written before
the print records committed, so a failed commit left an unrecorded print behind).

Failures are real: SQLite locked by another writer while the records are inserted, and a commit
refused by the database (a deferred foreign key that only fails at COMMIT)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlmodel import Session, select

from cardsvc.errors import RegistryError
from cardsvc.issuance.printing import Layout, PrintService, StagedFiles
from cardsvc.registry import card_repo
from cardsvc.registry.cards import PrintRecord
from cardsvc.registry.models import table_of
from tests.issuance.support import NOW, Desk, clock
from tests.issuance.test_printing import issue_all

Export = Callable[[PrintService, Path], Any]
EXPORTS: dict[str, tuple[Export, str]] = {
    "sheet": (lambda service, out: service.export_sheet("B1", out / "sheet.pdf", Layout.a4), "sheet.pdf"),
    "qr-png": (lambda service, out: service.export_qr("B1", out / "qr", "png"), "qr"),
    "qr-svg": (lambda service, out: service.export_qr("B1", out / "qr", "svg"), "qr"),
}


def print_records(desk: Desk) -> list[PrintRecord]:
    with desk.sessions() as session:
        return list(session.exec(select(PrintRecord)))


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def printed(desk: Desk) -> Desk:
    desk.create_batch()
    issue_all(desk, 2)
    return desk


@pytest.fixture
def locked_engine(engine: Engine) -> Iterator[sqlite3.Connection]:
    """Another process-like writer holds SQLite's write lock; our engine gives up after 50 ms."""
    event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA busy_timeout=50"))
    engine.dispose()  # new connections get the short timeout
    path = engine.url.database or ""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.parametrize("kind", list(EXPORTS))
def test_recording_fails_no_file_is_left(printed: Desk, locked_engine: sqlite3.Connection, tmp_path: Path,
                                         kind: str) -> None:
    export, _ = EXPORTS[kind]
    out = tmp_path / "out"
    with pytest.raises(RegistryError, match="not recorded: database error") as refused:
        export(PrintService(printed.sessions, clock=clock), out)
    assert isinstance(refused.value.__cause__, OperationalError) and "locked" in str(refused.value.__cause__)
    assert all_files(out) == []  # neither the target nor a temporary file


def failing_commit_sessions(engine: Engine) -> Callable[[], Session]:
    """Sessions whose COMMIT the database refuses: a print record names a missing card, and SQLite
    checks that deferred foreign key only at COMMIT (after the files were staged)."""

    def make() -> Session:
        session = Session(engine, expire_on_commit=False)

        @event.listens_for(session, "after_begin")
        def defer(_session: Session, _tx: Any, connection: Any) -> None:
            connection.exec_driver_sql("PRAGMA defer_foreign_keys=ON")

        @event.listens_for(session, "before_commit")
        def orphan(sess: Session) -> None:
            sess.connection().execute(insert(table_of(PrintRecord)).values(
                card_id=999_999, kind="sheet", target="orphan", reprint=False, at=NOW))

        return session

    return make


@pytest.mark.parametrize("kind", list(EXPORTS))
def test_commit_fails_no_file_is_left(printed: Desk, engine: Engine, tmp_path: Path, kind: str) -> None:
    export, _ = EXPORTS[kind]
    out = tmp_path / "out"
    with pytest.raises(RegistryError) as refused:
        export(PrintService(failing_commit_sessions(engine), clock=clock), out)
    cause = refused.value.__cause__
    assert isinstance(cause, IntegrityError) and "FOREIGN KEY" in str(cause)
    assert all_files(out) == []
    assert print_records(printed) == []


@pytest.mark.parametrize("kind", list(EXPORTS))
def test_committed_print_replaces_the_target_atomically(printed: Desk, tmp_path: Path, kind: str) -> None:
    export, name = EXPORTS[kind]
    out = tmp_path / "out"
    out.mkdir()
    service = PrintService(printed.sessions, clock=clock)
    export(service, out)
    first = {p: p.read_bytes() for p in all_files(out)}
    assert len(first) == (1 if kind == "sheet" else 2)
    assert all(p.relative_to(out).parts[0] == name and not p.name.startswith(".") for p in first)
    export(service, out)  # a reprint overwrites the same names, no temporary file remains
    assert sorted(first) == all_files(out)
    assert [r.reprint for r in print_records(printed)] == [False, False, True, True]  # 2 cards, twice


def test_a_database_error_never_shows_its_row_values(printed: Desk, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver's message may quote the row it refused (PostgreSQL's DETAIL does): the typed error
    names the batch and the error class only; the driver text stays on the chained cause."""

    def refused(*_args: Any, **_kw: Any) -> None:
        raise DataError("INSERT INTO card_print ...", {"target": "王小明 110105194912310021"},
                        Exception("value too long: 王小明 110105194912310021"))

    monkeypatch.setattr(card_repo, "add_print", refused)
    with pytest.raises(RegistryError) as raised:
        PrintService(printed.sessions, clock=clock).export_sheet("B1", tmp_path / "out" / "sheet.pdf")
    shown = raised.value.diagnostics()
    assert "B1" in shown and "DataError" in shown and "hint:" in shown
    assert "王小明" not in shown and "110105" not in shown
    assert all_files(tmp_path / "out") == []


def test_staged_files_are_removed_when_not_published(tmp_path: Path) -> None:
    target = tmp_path / "a" / "sheet.pdf"
    with StagedFiles() as staged:
        staged.write(target, b"%PDF-")
        (temp,) = all_files(tmp_path)
        assert temp.name.startswith(".sheet.pdf.") and temp.read_bytes() == b"%PDF-"
    assert all_files(tmp_path) == []
    with StagedFiles() as staged:
        staged.write(target, b"%PDF-1")
        assert staged.publish() == [target]
    assert all_files(tmp_path) == [target] and target.read_bytes() == b"%PDF-1"
