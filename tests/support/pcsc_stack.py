"""The real PC/SC stack for tests: a private pcscd + vpcd readers + our emulator, torn down after.

``PcscStack`` wraps :class:`cardsvc.emulator.pcscd.PrivatePcscd` (which does the namespace work) and
starts one emulator :class:`~cardsvc.emulator.runtime.Slot` per reader. The test process reaches the
private daemon through ``PCSCLITE_CSOCK_NAME``, which ``tests/conftest.py`` sets once per session to
a symlink (pcsc-lite caches the name at the first context); each stack re-points that symlink.
One stack at a time per process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.pcscd import SOCKET_ENV, PrivatePcscd, new_private_pcscd
from cardsvc.emulator.runtime import Emulator, Faults, RemovedCallback, Slot
from cardsvc.transport import pcsc


class PcscStack:
    def __init__(self, readers: int, workdir: Path) -> None:
        link = Path(os.environ[SOCKET_ENV])
        self.pcscd: PrivatePcscd = new_private_pcscd(readers, workdir=workdir, socket_link=link)
        self.readers = readers
        self.emulator: Emulator | None = None

    def start(self) -> PcscStack:
        self.pcscd.start()
        return self

    @property
    def reader_names(self) -> list[str]:
        return self.pcscd.reader_names[: self.readers]

    def emulate(self, cards: Sequence[Sequence[VirtualCard]], *, feed: bool = False,
                faults: Faults | None = None, on_removed: RemovedCallback | None = None,
                wait_s: float = 5.0) -> Emulator:
        """Start one slot per reader with ``cards[i]`` queued; wait until first cards are seen."""
        slots = [Slot(i, port, cards=cards[i] if i < len(cards) else (), feed=feed, faults=faults,
                      on_removed=on_removed)
                 for i, port in enumerate(self.pcscd.ports[: self.readers])]
        self.emulator = Emulator(slots).start()
        for name, queued in zip(self.reader_names, cards, strict=False):
            if queued:
                pcsc.wait_for_card(name, wait_s)
        return self.emulator

    def slot(self, index: int) -> Slot:
        assert self.emulator is not None, "call emulate() first"
        return self.emulator.slots[index]

    def close(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
        self.pcscd.stop()
