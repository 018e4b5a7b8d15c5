"""A real station process killed with SIGKILL between journal steps; recovery reads the card."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cardsvc.emulator.images import load_image, save_image
from cardsvc.issuance.recovery import Recovery
from tests.issuance.invariants import assert_invariants
from tests.issuance.support import ROOT, Desk, QueueSource, blank_cards


@pytest.mark.parametrize("point", ["bound", "personalised", "written"])
def test_killed_station_is_recovered_from_the_card(desk: Desk, tmp_path: Path, point: str) -> None:
    desk.create_batch()
    image = save_image(blank_cards("ntag424", 1)[0], tmp_path / "card.json")
    marker = tmp_path / "marker"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.issuance.station_child", str(desk.engine.url), str(tmp_path / "keys"),
         str(image), point, str(marker)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"child exited with {child.returncode} before {point}"
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    card = load_image(image)
    desk.use_batch("B1")
    report = Recovery(desk.workflow("recovery"), desk.sessions).run([QueueSource("R0", [card])],
                                                                  lambda _e: None)
    assert report.unresolved == () and len(report.outcomes) == 1
    assert report.outcomes[0].kind.value == "issued", report.outcomes[0].reason
    assert assert_invariants(desk, {card.uid: card}) == {"issued": 1}
