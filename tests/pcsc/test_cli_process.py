"""`cardsvc emulate --private-pcscd` as a real process, seen by `cardsvc readers --json` in another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]

CARDSVC = [str(Path(sys.executable).with_name("cardsvc"))]  # the installed console script


def _wait_for_line(process: subprocess.Popen[str], prefix: str, timeout_s: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no line starting {prefix!r} within {timeout_s} s")


def test_emulate_private_pcscd_then_readers_then_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "CARDSVC_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"}
    env.pop("CARDSVC_PROFILES_DIR", None)
    emulate = subprocess.Popen(
        [*CARDSVC, "emulate", "--profile", "ntag424-dna", "--readers", "2", "--private-pcscd",
         "--state-dir", str(state)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env)
    try:
        export = _wait_for_line(emulate, "export PCSCLITE_CSOCK_NAME=", 20)
        client_env = {**env, "PCSCLITE_CSOCK_NAME": export.split("=", 1)[1]}
        rows: list[dict[str, object]] = []
        for _ in range(50):  # the cards appear at pcscd's next presence poll
            listed = subprocess.run([*CARDSVC, "readers", "--json"], env=client_env,
                                    capture_output=True, text=True, timeout=30, check=True)
            rows = json.loads(listed.stdout)
            if all(r["atr"] for r in rows):
                break
            time.sleep(0.1)
        assert [r["reader"] for r in rows] == ["Virtual PCD 00 00", "Virtual PCD 00 01"]
        assert [r["profiles"] for r in rows] == [["ntag424-dna"], ["ntag424-dna"]]
    finally:
        emulate.send_signal(signal.SIGTERM)
        output, _ = emulate.communicate(timeout=20)
    assert emulate.returncode == 0, output
    assert "image saved" in output
    saved = sorted(p.name.split("-")[0] for p in state.glob("*.json"))
    assert saved == ["0", "1"]
