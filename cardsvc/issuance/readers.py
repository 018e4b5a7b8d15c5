"""PC/SC readers as card sources for the station (the only issuance module that reaches pcsc).

``PcscReaderSource.next_card`` waits for a card in short slices, up to its timeout, so a stop request
is seen within half a second; ``release`` disconnects (unpowering the card) and waits until the card is taken
away, so the same card is not processed twice in a row by accident. A missing reader raises
:class:`ReaderUnavailable`, which the worker turns into a pause.
"""

from __future__ import annotations

import threading
import time

from cardsvc.errors import CardTimeout, NoCard, ReaderUnavailable
from cardsvc.transport import pcsc
from cardsvc.transport.base import CardConnection

WAIT_SLICE_S = 0.5


class PcscReaderSource:
    def __init__(self, reader: str, *, removal_timeout_s: float = 600.0) -> None:
        self._reader = reader
        self._removal_timeout_s = removal_timeout_s
        self._stop = threading.Event()

    @property
    def name(self) -> str:
        return self._reader

    def next_card(self, stop: threading.Event, timeout_s: float) -> CardConnection | None:
        self._stop = stop
        deadline = time.monotonic() + timeout_s
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            try:
                pcsc.wait_for_card(self._reader, min(WAIT_SLICE_S, left))
            except NoCard:
                continue
            return pcsc.connect(self._reader)
        return None

    def release(self, conn: CardConnection) -> None:
        conn.close()
        waited = 0.0
        while not self._stop.is_set() and waited < self._removal_timeout_s:
            try:
                pcsc.wait_for_removal(self._reader, WAIT_SLICE_S)
                return
            except CardTimeout:
                waited += WAIT_SLICE_S


def reader_names(selected: list[str] | None) -> list[str]:
    """``None``/``["all"]`` → every reader PC/SC knows; else the names given (checked to exist)."""
    known = [r.name for r in pcsc.list_readers()]
    if not selected or selected == ["all"]:
        return known
    missing = [n for n in selected if n not in known]
    if missing:
        raise ReaderUnavailable(f"no such reader: {', '.join(missing)}; readers: {', '.join(known)}")
    return selected
