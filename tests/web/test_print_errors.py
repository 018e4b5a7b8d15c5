"""A print sheet the database cannot record: the desk page and ``cardsvc batch export`` say so in
their own words (the typed RegistryError of cardsvc.issuance.printing), never a driver's text.

The failure is real: the batch table is renamed away under the running app (SQLite then answers
"no such table", an OperationalError) and put back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cardsvc.registry.db import make_engine
from cardsvc.verification.roles import Role
from cardsvc.web.i18n import LANG_COOKIE
from tests.support.cli import Cli, in_process_cli
from tests.web.support import Site


def _rename(engine: Engine, old: str, new: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


@pytest.fixture
def batches_gone(site: Site) -> Iterator[None]:
    _rename(site.engine, "card_batch", "card_batch_away")
    try:
        yield
    finally:
        _rename(site.engine, "card_batch_away", "card_batch")


@pytest.mark.parametrize(("lang", "expected"),
                         [("zh", "数据库暂时不可用"), ("en", "The database is unavailable")])
def test_the_desk_print_page_names_the_database_problem(site: Site, batches_gone: None, lang: str,
                                                        expected: str) -> None:
    site.client = site.fresh_client()
    assert site.login(Role.clerk).status_code == 303
    site.client.cookies.set(LANG_COOKIE, lang)
    answer = site.get("/desk/batches/B1/sheet.pdf")
    assert answer.status_code == 503 and answer.headers["content-type"].startswith("text/html")
    assert expected in answer.text
    assert "card_batch" not in answer.text and "OperationalError" not in answer.text
    assert "Traceback" not in answer.text


def test_cli_batch_export_says_the_print_was_not_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cli: Cli = in_process_cli(tmp_path, monkeypatch, capsys)
    assert cli("init")[0] == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cardsvc.sqlite3'}")
    _rename(engine, "card_batch", "card_batch_away")
    engine.dispose()
    with ThreadPoolExecutor(1) as worker:  # off any event loop a browser test left on this thread
        export = worker.submit(cli, "batch", "export", "B1", "--sheet", str(tmp_path / "s.pdf"))
        code, out, err = export.result()
    assert code == 9, (out, err)  # a registry error
    err = " ".join(err.split())  # the console wraps long lines
    assert "the print of batch B1 was not recorded: database error (OperationalError)" in err
    assert "hint: check that the database is running" in err
    assert "no such table" not in err and "Traceback" not in err
    assert not (tmp_path / "s.pdf").exists()
