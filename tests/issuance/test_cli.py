"""`cardsvc batch …` and `cardsvc card …` end to end: the CLI over a real database and key store,
issuing on a virtual reader through pcscd."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cardsvc.cli.main import build_app, exit_code_for
from cardsvc.errors import CardsvcError
from cardsvc.registry.db import make_engine
from cardsvc.verification.audit import verify_chain
from cardsvc.verification.store import read_audit
from tests.issuance.support import blank_cards, seed_members
from tests.support.pcsc_stack import PcscStack


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CARDSVC_ISSUER", "XCGH")
    monkeypatch.setenv("CARDSVC_PUBLIC_BASE_URL", "https://verify.example.cn")
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> object:
        result = runner.invoke(build_app(), list(args))
        if ok:
            assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    invoke("init", "--dev")
    invoke("keys", "init")
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cardsvc.sqlite3'}")
    seed_members(engine, 3)
    engine.dispose()
    return invoke


def _json(result: object) -> object:
    return json.loads(result.stdout)  # type: ignore[attr-defined]


@pytest.mark.pcsc
def test_batch_and_card_commands(cli: Callable[..., object], pcsc_stack: Callable[[int], PcscStack],
                                 tmp_path: Path) -> None:
    (created,) = _json(cli("batch", "create", "B1", "--org", "D01", "--init-keys", "--json"))  # type: ignore[misc]
    assert (created["members"], created["pending"], created["profile"]) == (3, 3, "ntag424-dna")
    stack = pcsc_stack(1)
    stack.emulate([blank_cards("ntag424", 3)], feed=True)
    dry = _json(cli("batch", "issue", "B1", "--readers", stack.reader_names[0], "--dry-run", "--json"))
    assert dry["pending_members"] == 3 and dry["written"] == 0  # type: ignore[index]
    out = cli("batch", "issue", "B1", "--readers", stack.reader_names[0], "--json")
    lines = [json.loads(line) for line in out.stdout.splitlines()]  # type: ignore[attr-defined]
    assert [e["outcome"] for e in lines[:-1]] == ["issued"] * 3
    assert lines[-1]["summary"]["issued"] == 3
    (status,) = _json(cli("batch", "status", "B1", "--json"))  # type: ignore[misc]
    assert (status["issued"], status["pending"]) == (3, 0)
    sheet = tmp_path / "sheet.pdf"
    printed = _json(cli("batch", "export", "B1", "--sheet", str(sheet), "--qr-dir", str(tmp_path / "qr"),
                        "--json"))
    assert [r["cards"] for r in printed] == [3, 3] and sheet.read_bytes().startswith(b"%PDF")  # type: ignore[index]
    numbers = sorted(p.stem for p in (tmp_path / "qr").glob("*.png"))
    shown = _json(cli("card", "show", numbers[0], "--json"))
    assert (shown["state"], shown["status"], shown["batch"]) == ("issued", "active", "B1")  # type: ignore[index]
    cli("card", "lost", numbers[0], "--reason", "reported by phone")
    replaced = _json(cli("card", "replace", numbers[0], "--json"))
    assert replaced["new_card_number"] and replaced["to_status"] == "revoked"  # type: ignore[index]
    revoked = tmp_path / "revoked.txt"
    cli("card", "revoked", "--out", str(revoked))
    assert revoked.read_text().split() == [numbers[0]]
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cardsvc.sqlite3'}")
    with Session(engine) as session:
        rows = [r for r in read_audit(session) if r.event.event_type.startswith("card.")]
        verify_chain(read_audit(session))
    engine.dispose()
    assert [(r.event.event_type, r.event.subject) for r in rows] == [
        ("card.lost", numbers[0]), ("card.replace", numbers[0])]


def test_card_errors_map_to_exit_codes(cli: Callable[..., object]) -> None:
    bad = cli("card", "suspend", "12345", ok=False)
    assert isinstance(bad.exception, CardsvcError)  # type: ignore[attr-defined]
    assert exit_code_for(bad.exception) == 9  # type: ignore[attr-defined]
    missing = cli("batch", "status", "NOPE", ok=False)
    assert exit_code_for(missing.exception) == 9  # type: ignore[attr-defined]


def test_recover_without_cards_voids_held_reservations(cli: Callable[..., object], tmp_path: Path) -> None:
    from cardsvc.issuance.batches import BatchService
    from cardsvc.issuance.journal import Journal
    from cardsvc.registry.db import session_factory

    cli("batch", "create", "B1", "--org", "D01", "--init-keys")
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cardsvc.sqlite3'}")
    sessions = session_factory(engine)
    held = Journal(sessions, actor="dead-station").reserve(BatchService(sessions).get("B1"))
    engine.dispose()
    assert held is not None
    report = _json(cli("batch", "recover", "B1", "--no-cards", "--station", "dead-station", "--json"))
    assert report == {"voided": [held.card_number], "finished": [], "resolved": [], "abandoned": [],
                      "unresolved": []}
    (status,) = _json(cli("batch", "status", "B1", "--json"))  # type: ignore[misc]
    assert (status["voided"], status["pending"]) == (1, 3)
