"""The served app moves its start-up objects out of the collector's sight (``gc.freeze``)."""

from __future__ import annotations

import gc

from cardsvc.web.app import settle_heap


def test_settle_heap_freezes_what_exists() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(1000)]
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
