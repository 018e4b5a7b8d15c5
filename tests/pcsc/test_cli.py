"""`cardsvc readers` and `cardsvc emulate` against the private PC/SC stack."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cardsvc.cli import emulate as emulate_cli
from cardsvc.cli.main import build_app, exit_code_for
from cardsvc.emulator.echo import ECHO_ATR, EchoCard
from cardsvc.emulator.images import load_image
from cardsvc.errors import ReaderUnavailable
from cardsvc.transport import pcsc

pytestmark = pytest.mark.pcsc

PROFILE = f"""
name = "echo-test"
family = "ntag424"
description = "test profile whose ATR pattern matches the plumbing echo card"
[match]
atr = [{{ value = "{ECHO_ATR.hex().upper()}" }}]
[ntag424]
"""


@pytest.fixture
def profiles_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "profiles"
    directory.mkdir()
    (directory / "echo-test.toml").write_text(PROFILE, encoding="utf-8")
    monkeypatch.setenv("CARDSVC_PROFILES_DIR", str(directory))
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(tmp_path / "var"))
    return directory


def test_readers_json_lists_cards_and_profiles(pcsc_stack, profiles_dir: Path) -> None:
    stack = pcsc_stack(3)
    stack.emulate([[EchoCard.blank()], [EchoCard.blank()], []])
    result = CliRunner().invoke(build_app(), ["readers", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)[:3]  # vpcd readers come in pairs: a 4th, empty one exists
    assert [r["reader"] for r in rows] == stack.reader_names
    assert [r["profiles"] for r in rows] == [["echo-test"], ["echo-test"], []]
    assert rows[0]["atr"] == ECHO_ATR.hex().upper() and rows[2]["atr"] is None


def test_readers_reports_unmatched_atr(pcsc_stack, profiles_dir: Path) -> None:
    (profiles_dir / "echo-test.toml").write_text(PROFILE.replace(ECHO_ATR.hex().upper(), "3B8180018080"))
    stack = pcsc_stack(1)
    stack.emulate([[EchoCard.blank()]])
    result = CliRunner().invoke(build_app(), ["readers", "--json"])
    rows = json.loads(result.stdout)
    assert rows[0]["profile"] == f"no profile matches ATR {ECHO_ATR.hex().upper()}"


def test_readers_without_pcscd_is_reader_unavailable(pcsc_stack, profiles_dir: Path) -> None:
    stack = pcsc_stack(1)
    stack.pcscd.stop()
    result = CliRunner().invoke(build_app(), ["readers"])
    assert isinstance(result.exception, ReaderUnavailable)  # main.run turns it into exit code 5
    assert exit_code_for(result.exception) == 5
    assert "SCARD_E_NO_SERVICE" in str(result.exception)


def test_emulate_feeds_cards_and_saves_images(pcsc_stack, profiles_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The seam: the profile's family module may not exist yet; the echo card stands in for it.
    monkeypatch.setattr(emulate_cli, "factory_for", lambda _family: EchoCard)
    stack = pcsc_stack(2)
    state = tmp_path / "state"
    args = ["emulate", "--profile", "echo-test", "--readers", "2", "--feed", "2", "--port",
            str(stack.pcscd.ports[0]), "--state-dir", str(state), "--exit-when-empty"]
    outcome: dict[str, object] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=CliRunner().invoke(build_app(), args)))
    runner.start()
    uids = []
    for name in stack.reader_names:
        for _ in range(2):
            pcsc.wait_for_card(name, 5.0)
            with pcsc.connect(name) as conn:
                uids.append(conn.transmit(bytes.fromhex("FFCA000000"))[:-2])
            pcsc.wait_for_removal(name, 5.0)
    runner.join(10)
    result = outcome["result"]
    assert result.exit_code == 0, result.output
    assert len(set(uids)) == 4
    saved = sorted(state.glob("*.json"))
    assert {tuple(p.name.split("-")[:2]) for p in saved} == {("0", "1"), ("0", "2"), ("1", "1"), ("1", "2")}
    assert {load_image(p).uid for p in saved} == set(uids)


def test_emulate_refuses_unknown_profile_and_missing_readers(profiles_dir: Path) -> None:
    result = CliRunner().invoke(build_app(), ["emulate", "--profile", "nope"])
    assert result.exit_code != 0 and "no profile named 'nope'" in str(result.exception)
    result = CliRunner().invoke(build_app(), ["emulate", "--profile", "echo-test", "--port", "9"])
    assert "no vpcd reader listens on port(s) 9, 10" in str(result.exception)
