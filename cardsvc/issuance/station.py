"""The issuing station: one worker thread per reader, progress as events, clean stop, resume.

A worker loops: hold a reservation (committed before any card is touched — with the database
down no APDU is sent), wait for a card, run it through :class:`CardWorkflow`, let it go, report.
Failures are reported and skipped; the next card continues. ``stop`` (Ctrl-C in the CLI) lets each
worker finish its current card; an unused reservation is released for the next run. A reader that
disappears pauses its worker (event ``paused``) while the others go on; it resumes when the reader
is back.

No rich/typer here: the CLI renders :class:`StationEvent` s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cardsvc.errors import CardsvcError, ReaderUnavailable
from cardsvc.issuance.journal import Journal
from cardsvc.issuance.workflow import CardOutcome, CardWorkflow, FaultPoint, OutcomeKind
from cardsvc.logging import get_logger
from cardsvc.registry.cards import Card
from cardsvc.transport.base import CardConnection

log = get_logger(__name__)
RETRY_S = 1.0


class CardSource(Protocol):
    """Where a worker's cards come from: a PC/SC reader, or a queue of emulated cards in tests."""

    @property
    def name(self) -> str: ...

    def next_card(self, stop: threading.Event) -> CardConnection | None:
        """Block until a card is present (``None`` once ``stop`` is set or no card will come)."""

    def release(self, conn: CardConnection) -> None:
        """Disconnect and wait until the card is taken away (or fed out)."""


class EventKind(StrEnum):
    started = "started"
    waiting = "waiting"
    outcome = "outcome"
    paused = "paused"
    error = "error"
    finished = "finished"


@dataclass(frozen=True, slots=True)
class StationEvent:
    reader: str
    kind: EventKind
    outcome: CardOutcome | None = None
    message: str = ""
    elapsed_s: float = 0.0


EventSink = Callable[[StationEvent], None]
Mode = Callable[["Worker", CardConnection], CardOutcome]


class Worker:
    """One reader's loop (runs in its own thread)."""

    def __init__(self, source: CardSource, workflow: CardWorkflow, journal: Journal, emit: EventSink,
                 stop: threading.Event, *, recover_only: bool = False,
                 until: Callable[[], bool] | None = None) -> None:
        self.source = source
        self.workflow = workflow
        self.journal = journal
        self._emit = emit
        self._stop = stop
        self._recover_only = recover_only
        self._until = until or (lambda: False)
        self._held: Card | None = None
        self.outcomes: list[CardOutcome] = []

    def event(self, kind: EventKind, outcome: CardOutcome | None = None, message: str = "",
              elapsed_s: float = 0.0) -> None:
        self._emit(StationEvent(self.source.name, kind, outcome, message, elapsed_s))

    def run(self) -> None:
        """Loop until stopped or done. A crash (any non-cardsvc exception) leaves the reservation
        held, as a killed process would: ``batch recover`` resolves it."""
        self.event(EventKind.started)
        while not self._stop.is_set() and not self._until() and self._step():
            pass
        self._let_go()
        self.event(EventKind.finished)

    def _step(self) -> bool:
        """One card; ``False`` when the batch (or the card source) has nothing left."""
        if not self._recover_only and self._held is None:
            try:
                self._held = self.journal.reserve(self.workflow.ctx.batch)
            except CardsvcError as exc:
                self.event(EventKind.error, message=f"no reservation, no card touched: {exc.message}")
                self._stop.wait(RETRY_S)
                return True
            if self._held is None:
                return False
            self.workflow.hook(FaultPoint.reserved, self._held.card_number)
        conn = self._next_card()
        if conn is None:
            return False
        self._handle(conn)
        return True

    def _next_card(self) -> CardConnection | None:
        self.event(EventKind.waiting)
        while not self._stop.is_set():
            try:
                return self.source.next_card(self._stop)
            except ReaderUnavailable as exc:
                self.event(EventKind.paused, message=f"reader unavailable: {exc.message}")
                self._stop.wait(RETRY_S)
        return None

    def _handle(self, conn: CardConnection) -> None:
        started = time.perf_counter()
        try:
            outcome = self._run_card(conn)
            elapsed = time.perf_counter() - started  # the card's own time, not the clerk's swap
        finally:
            self._release(conn)
        if outcome.used_reservation:
            self._held = None
        self.outcomes.append(outcome)
        self.event(EventKind.outcome, outcome, outcome.reason, elapsed)

    def _run_card(self, conn: CardConnection) -> CardOutcome:
        try:
            if self._recover_only or self._held is None:
                return self.workflow.resume(conn)
            return self.workflow.process(conn, self._held)
        except CardsvcError as exc:
            used = self._held is not None and self._held.state != "reserved"
            return CardOutcome(OutcomeKind.failed, None, f"{exc.code}: {exc.message}", used_reservation=used)

    def _release(self, conn: CardConnection) -> None:
        try:
            self.source.release(conn)
        except CardsvcError as exc:
            log.info("%s: releasing the card: %s", self.source.name, exc.message)

    def _let_go(self) -> None:
        if self._held is None:
            return
        try:
            self.journal.release(self._held)
        except CardsvcError as exc:
            log.warning("%s: could not release reservation %s (%s); `batch recover` will void it",
                        self.source.name, self._held.card_number, exc.message)
        self._held = None


class Station:
    """Run one worker per card source until the batch is done or :meth:`stop` is called."""

    def __init__(self, workers: Sequence[Worker], stop: threading.Event) -> None:
        self.workers = list(workers)
        self._stop = stop
        self._threads: list[threading.Thread] = []

    def start(self) -> Station:
        for worker in self.workers:
            thread = threading.Thread(target=worker.run, name=f"station:{worker.source.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the workers; ``True`` when all have finished."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(t.is_alive() for t in self._threads)

    def run(self) -> list[CardOutcome]:
        self.start()
        self.join()
        return [o for w in self.workers for o in w.outcomes]
