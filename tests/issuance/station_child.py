"""A station process for the kill test: personalise one card, then hang at a fault point.

``python -m tests.issuance.station_child DB_URL KEY_DIR CARD_IMAGE POINT MARKER``: at ``POINT`` the
card's image is saved back to ``CARD_IMAGE`` and ``MARKER`` is written; the parent then kills the
process with SIGKILL (nothing runs after that: no release, no rollback handler, no flush).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from cardsvc.credential.filestore import FileKeyStore
from cardsvc.emulator.images import load_image, save_image
from cardsvc.issuance.workflow import FaultPoint
from cardsvc.registry.db import make_engine
from tests.issuance.support import FAST_SCRYPT, Desk, profile
from tests.support.cards import DirectConnection


def main(db_url: str, key_dir: str, image: str, point: str, marker: str) -> None:
    desk = Desk(make_engine(db_url), FileKeyStore(Path(key_dir), "issuance tests", scrypt_n=FAST_SCRYPT),
                profile("ntag424-dna"))
    desk.use_batch("B1")
    card = load_image(Path(image))

    def hook(at: FaultPoint, _number: str) -> None:
        if at.value == point:
            save_image(card, Path(image))
            Path(marker).write_text(at.value, encoding="utf-8")
            time.sleep(60)

    workflow = desk.workflow("child", hook=hook)
    reservation = workflow.journal.reserve(desk.batch)
    assert reservation is not None
    workflow.process(DirectConnection(card), reservation)
    raise SystemExit("the fault point was never reached")


if __name__ == "__main__":
    main(*sys.argv[1:6])
