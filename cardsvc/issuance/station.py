"""The issuing station: one worker thread per reader, progress as events, clean stop, resume.

A worker loops: hold a reservation (committed before any card is touched — with the database
down no APDU is sent) and pre-sign its credential while no card is there, wait for a card, run it
through :class:`CardWorkflow` up to ``verified``, let it go while a helper thread commits
``issued`` (no card step follows ``verified``), report. Failures are reported and skipped; the next card
continues. ``stop`` (Ctrl-C in the CLI) lets each worker finish its current card; an unused
reservation is released for the next run. A reader that disappears pauses its worker (event
``paused``) while the others go on; it resumes when the reader is back.

Every wait is bounded (:class:`Limits`): a worker that sees no card for ``card_wait_s``, or whose
reader stays away for ``reader_wait_s``, gives its reservation back and ends with an ``error``
event; :meth:`Station.join` is a watchdog — a worker stuck in one activity beyond its bound makes
the station stop and, after ``stop_grace_s``, raise :class:`StationStuck` naming it.

No rich/typer here: the CLI renders :class:`StationEvent` s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from cardsvc.errors import (
    CardsvcError,
    ConfigError,
    Conflict,
    CredentialError,
    IssuanceError,
    ReaderUnavailable,
)
from cardsvc.issuance.journal import Journal
from cardsvc.issuance.workflow import CardOutcome, CardWorkflow, FaultPoint, OutcomeKind, Presigned
from cardsvc.logging import get_logger
from cardsvc.registry.cards import Card
from cardsvc.transport.base import CardConnection

log = get_logger(__name__)
RETRY_S = 1.0
WATCH_S = 0.25
MAX_FAILS_PER_RESERVATION = 3  # then the held reservation is given back (another reader may use it)


class StationStuck(IssuanceError):
    """A worker overran the bound of what it was doing and did not stop when asked."""

    code = "station_stuck"
    hint = "check the reader and the database; `cardsvc batch recover` resolves what the worker held"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds (seconds) on each thing a worker waits for; :meth:`Station.join` enforces them."""

    card_wait_s: float = 1800.0  # no card presented: give the reservation back, end the worker
    reader_wait_s: float = 300.0  # reader unavailable this long: end the worker (others go on)
    step_s: float = 120.0  # one reservation, one card (connect → issued) or one release
    stop_grace_s: float = 30.0  # after a stop: how long a late worker may still take


class CardSource(Protocol):
    """Where a worker's cards come from: a PC/SC reader, or a queue of emulated cards in tests."""

    @property
    def name(self) -> str: ...

    def next_card(self, stop: threading.Event, timeout_s: float) -> CardConnection | None:
        """Block until a card is present; ``None`` once ``stop`` is set, ``timeout_s`` passed, or
        no card will come."""

    def release(self, conn: CardConnection) -> None:
        """Disconnect and wait (bounded) until the card is taken away (or fed out)."""


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


@dataclass(frozen=True, slots=True)
class Activity:
    """What a worker is doing since when, and how long it may take."""

    what: str
    since: float
    bound_s: float

    def overrun(self, now: float) -> float:
        return now - self.since - self.bound_s


EventSink = Callable[[StationEvent], None]
Mode = Callable[["Worker", CardConnection], CardOutcome]


class Worker:
    """One reader's loop (runs in its own thread)."""

    def __init__(self, source: CardSource, workflow: CardWorkflow, journal: Journal, emit: EventSink,
                 stop: threading.Event, *, recover_only: bool = False,
                 until: Callable[[], bool] | None = None, limits: Limits | None = None) -> None:
        self.source = source
        self.workflow = workflow
        self.journal = journal
        self._emit = emit
        self._stop = stop
        self._recover_only = recover_only
        self._until = until or (lambda: False)
        self.limits = limits or Limits()
        self._held: Card | None = None
        self._presigned: Presigned | None = None
        self._fails_on_held = 0
        self._issuer: ThreadPoolExecutor | None = None
        self.outcomes: list[CardOutcome] = []
        self.activity = Activity("starting", time.monotonic(), self.limits.step_s)

    def event(self, kind: EventKind, outcome: CardOutcome | None = None, message: str = "",
              elapsed_s: float = 0.0) -> None:
        self._emit(StationEvent(self.source.name, kind, outcome, message, elapsed_s))

    def doing(self, what: str, bound_s: float) -> None:
        self.activity = Activity(what, time.monotonic(), bound_s)

    def overdue(self, now: float) -> str | None:
        """Why this worker is late, or ``None``."""
        activity = self.activity
        if activity.overrun(now) <= 0:
            return None
        return (f"{self.source.name}: {activity.what} for {now - activity.since:.1f} s "
                f"(bound {activity.bound_s:g} s)")

    def run(self) -> None:
        """Loop until stopped or done. A crash (any non-cardsvc exception) leaves the reservation
        held, as a killed process would: ``batch recover`` resolves it."""
        self.event(EventKind.started)
        try:
            while not self._stop.is_set() and not self._until() and self._step():
                pass
        finally:
            if self._issuer is not None:
                self._issuer.shutdown(wait=False)
        self._let_go()
        self.doing("finished", float("inf"))
        self.event(EventKind.finished)

    def _step(self) -> bool:
        """One card; ``False`` when the batch (or the card source) has nothing left."""
        if not self._recover_only and self._held is None:
            try:
                if not self._reserve():
                    return False
            except CardsvcError as exc:
                self.event(EventKind.error, message=f"no reservation, no card touched: {exc.message}")
                self._stop.wait(RETRY_S)
                return True
        conn = self._next_card()
        if conn is None:
            return False
        self._handle(conn)
        return True

    def _reserve(self) -> bool:
        """Take a reservation and pre-sign its credential (no card is there yet); ``False`` when
        no member is left."""
        self.doing("reserving", self.limits.step_s)
        self._held = self.journal.reserve(self.workflow.ctx.batch)
        if self._held is None:
            return False
        self.workflow.hook(FaultPoint.reserved, self._held.card_number)
        self._presigned = self.workflow.presign(self._held)
        return True

    def _next_card(self) -> CardConnection | None:
        """The next card; ``None`` on stop, when the source has no more, or after ``card_wait_s``."""
        self.event(EventKind.waiting)
        self.doing("waiting for a card", self.limits.card_wait_s + self.limits.step_s)
        deadline = time.monotonic() + self.limits.card_wait_s
        gone_since: float | None = None
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            try:
                conn = self.source.next_card(self._stop, left)
            except ReaderUnavailable as exc:
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since >= self.limits.reader_wait_s:
                    self._give_up(f"reader unavailable for {self.limits.reader_wait_s:g} s: {exc.message}")
                    return None
                self.event(EventKind.paused, message=f"reader unavailable: {exc.message}")
                self._stop.wait(RETRY_S)
                continue
            if conn is not None or time.monotonic() < deadline:
                return conn  # a card, or the source will have no more
        if not self._stop.is_set():
            self._give_up(f"no card presented within {self.limits.card_wait_s:g} s")
        return None

    def _give_up(self, why: str) -> None:
        held = " (its reservation is given back)" if self._held is not None else ""
        self.event(EventKind.error, message=f"{why}; this reader stops{held} — rerun to resume")

    def _handle(self, conn: CardConnection) -> None:
        self.doing("personalising a card", self.limits.step_s)
        started = time.perf_counter()
        try:
            outcome = self._run_card(conn)
            elapsed = time.perf_counter() - started  # the card's own time, not the clerk's swap
            issuing = self._issue_while_releasing(outcome)
        finally:
            self._release(conn)
        outcome = self._settle(outcome, issuing)
        self._after(outcome)
        self.outcomes.append(outcome)
        self.event(EventKind.outcome, outcome, outcome.reason, elapsed)
        if outcome.station_fault:
            self.event(EventKind.error, message="station stopped: a key or credential problem on this "
                       "station means no card can be issued; fix it and rerun (cards are not spoiled)")
            self._stop.set()

    def _after(self, outcome: CardOutcome) -> None:
        """Drop the held reservation once used; give it back after repeated failures on it."""
        if outcome.used_reservation:
            self._held = self._presigned = None
            self._fails_on_held = 0
        elif self._held is not None and outcome.kind is OutcomeKind.failed:
            self._fails_on_held += 1
            if self._fails_on_held >= MAX_FAILS_PER_RESERVATION:
                log.warning("%s: %d failures on reservation %s; giving it back", self.source.name,
                            self._fails_on_held, self._held.card_number)
                self._let_go()

    def _run_card(self, conn: CardConnection) -> CardOutcome:
        try:
            if self._recover_only or self._held is None:
                return self.workflow.resume(conn)
            return self.workflow.process(conn, self._held, self._presigned, defer_issue=True)
        except Conflict as exc:
            return self._lost_reservation(exc)
        except CardsvcError as exc:
            used = self._held is not None and self._held.state != "reserved"
            return CardOutcome(OutcomeKind.failed, None, f"{exc.code}: {exc.message}", used_reservation=used,
                               station_fault=isinstance(exc, CredentialError | ConfigError))

    def _lost_reservation(self, exc: Conflict) -> CardOutcome:
        """The held reservation moved under us (voided by ``batch recover``, or the chip is bound
        elsewhere): give it back if it is still reserved, forget it, take a fresh one for the next card."""
        number = self._held.card_number if self._held is not None else None
        self._let_go()  # still reserved (chip bound elsewhere): give it back; voided: nothing to do
        log.warning("%s: reservation %s lost (%s); taking a fresh one", self.source.name, number, exc.code)
        return CardOutcome(OutcomeKind.failed, number, f"{exc.code}: {exc.message}; the reservation was "
                           "dropped, the next card gets a fresh one")

    def _issue_while_releasing(self, outcome: CardOutcome) -> Future[Card] | None:
        if outcome.pending_issue is None:
            return None
        if self._issuer is None:
            self._issuer = ThreadPoolExecutor(1, thread_name_prefix=f"issue:{self.source.name}")
        return self._issuer.submit(self.workflow.finish, outcome.pending_issue)

    def _settle(self, outcome: CardOutcome, issuing: Future[Card] | None) -> CardOutcome:
        """Wait (bounded) for the ``issued`` commit; a failure leaves the card ``verified`` for
        ``batch recover``. Anything but a cardsvc error (a simulated crash) propagates."""
        if issuing is None:
            return outcome
        self.doing("committing issued", self.limits.step_s)
        try:
            issuing.result(timeout=self.limits.step_s)
        except (CardsvcError, FutureTimeout) as exc:
            why = f"{exc.code}: {exc.message}" if isinstance(exc, CardsvcError) else "timed out"
            return CardOutcome(OutcomeKind.failed, outcome.card_number,
                               f"verified, but recording it issued failed ({why}); `cardsvc batch recover` "
                               "issues it", used_reservation=outcome.used_reservation)
        return replace(outcome, pending_issue=None)

    def _release(self, conn: CardConnection) -> None:
        self.doing("waiting for the card to be taken away", self.limits.card_wait_s + self.limits.step_s)
        try:
            self.source.release(conn)
        except CardsvcError as exc:
            log.info("%s: releasing the card: %s", self.source.name, exc.message)

    def _let_go(self) -> None:
        if self._held is None:
            return
        self.doing("giving the reservation back", self.limits.step_s)
        try:
            self.journal.release(self._held)
        except CardsvcError as exc:
            log.warning("%s: could not release reservation %s (%s); `batch recover` will void it",
                        self.source.name, self._held.card_number, exc.message)
        self._held = self._presigned = None
        self._fails_on_held = 0


class Station:
    """Run one worker per card source until the batch is done or :meth:`stop` is called."""

    def __init__(self, workers: Sequence[Worker], stop: threading.Event) -> None:
        self.workers = list(workers)
        self._stop = stop
        self._threads: list[threading.Thread] = []
        self._late_since: float | None = None

    def start(self) -> Station:
        """Probe each batch context's signer and trust list, then start the workers; a misconfigured
        station raises (``CredentialError``) before any card is touched."""
        for ctx in {id(w.workflow.ctx): w.workflow.ctx for w in self.workers}.values():
            ctx.probe(self.workers[0].workflow.now())
        for worker in self.workers:
            thread = threading.Thread(target=worker.run, name=f"station:{worker.source.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the workers; ``True`` when all have finished, ``False`` when ``timeout_s`` ran
        out first. Raises :class:`StationStuck` when a worker overran its bound and did not stop
        within the grace period (so even ``timeout_s=None`` never waits forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while alive := [t for t in self._threads if t.is_alive()]:
            self._watch()
            left = WATCH_S if deadline is None else min(WATCH_S, deadline - time.monotonic())
            if left <= 0:
                return False
            alive[0].join(left)
        return True

    def _watch(self) -> None:
        now = time.monotonic()
        running = (w for w, t in zip(self.workers, self._threads, strict=True) if t.is_alive())
        late = [why for w in running if (why := w.overdue(now))]
        if not late:
            return
        if self._late_since is None:
            self._late_since = now
            log.error("station: %s; stopping every worker", "; ".join(late))
            self.stop()
        grace = max(w.limits.stop_grace_s for w in self.workers)
        if now - self._late_since > grace:
            raise StationStuck(f"worker did not finish within its bound: {'; '.join(late)}")

    def run(self) -> list[CardOutcome]:
        self.start()
        self.join()
        return [o for w in self.workers for o in w.outcomes]
