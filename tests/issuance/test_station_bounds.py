"""Every wait of the station is bounded: the former bench hang (a worker holding the batch's last
member waits for a card that never comes) ends, stop is honoured while waiting, and a source that
ignores both makes the station fail loudly instead of hanging."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from cardsvc.issuance.station import EventKind, Limits, Station, StationEvent, StationStuck, Worker
from cardsvc.issuance.workflow import OutcomeKind
from cardsvc.registry import card_repo
from cardsvc.registry.cards import JournalState
from cardsvc.transport.base import CardConnection
from tests.issuance.invariants import assert_invariants
from tests.issuance.support import Desk, QueueSource, blank_cards

FAST = Limits(card_wait_s=0.5, reader_wait_s=0.5, step_s=5.0, stop_grace_s=1.0)


class ReaderSource(QueueSource):
    """Like a PC/SC reader: once its cards are used up it waits (bounded) instead of saying 'no more'."""

    def next_card(self, stop: threading.Event, timeout_s: float = 0.0) -> CardConnection | None:
        conn = super().next_card(stop, timeout_s)
        if conn is None:
            stop.wait(timeout_s)  # an empty reader: nobody presents a card
        return conn


class DeafSource(QueueSource):
    """A broken source that ignores both stop and its timeout until the test lets it go."""

    def __init__(self, name: str) -> None:
        super().__init__(name, [])
        self.entered = threading.Event()
        self.let_go = threading.Event()

    def next_card(self, stop: threading.Event, timeout_s: float = 0.0) -> CardConnection | None:
        self.entered.set()
        self.let_go.wait(30)
        return None


def workers(desk: Desk, sources: Sequence[QueueSource], events: list[StationEvent], stop: threading.Event,
            limits: Limits = FAST) -> list[Worker]:
    return [Worker(s, desk.workflow(s.name), desk.journal(s.name), events.append, stop, limits=limits)
            for s in sources]


def held_reservations(desk: Desk) -> list[str | None]:
    with desk.sessions() as session:
        cards = card_repo.cards_in_states(session, batch_id=desk.batch.id or 0,
                                          states=[JournalState.reserved])
        return [c.station for c in cards]


def test_worker_waiting_for_a_card_that_never_comes_ends_and_gives_the_member_back(desk: Desk) -> None:
    """The bench hang: R0 holds a reservation but no card comes to its reader; R1 issues the rest
    and finds no member left (R0 holds the last one)."""
    desk.create_batch()  # 5 members
    cards = blank_cards("ntag424", 5)
    sources = [ReaderSource("R0", []), ReaderSource("R1", cards)]
    events: list[StationEvent] = []
    stop = threading.Event()
    station = Station(workers(desk, sources, events, stop), stop).start()
    started = time.monotonic()
    assert station.join(timeout_s=30), "the station hung"
    assert time.monotonic() - started < 15
    gave_up = [(e.reader, e.message) for e in events if e.kind is EventKind.error]
    assert gave_up[0] == ("R0", "no card presented within 0.5 s; this reader stops "
                                "(its reservation is given back) — rerun to resume"), gave_up
    assert {e.reader for e in events if e.kind is EventKind.finished} == {"R0", "R1"}
    issued = [e for e in events if e.outcome and e.outcome.kind is OutcomeKind.issued]
    assert {e.reader for e in issued} == {"R1"} and len(issued) in (4, 5)  # 5: R1 took it back in time
    assert held_reservations(desk) == [None] * (5 - len(issued))  # given back, held by no reader
    assert assert_invariants(desk, {c.uid: c for c in cards})["issued"] == len(issued)


def test_the_member_given_back_is_issued_by_the_next_run(desk: Desk) -> None:
    desk.create_batch()
    cards = blank_cards("ntag424", 6)
    stop = threading.Event()
    events: list[StationEvent] = []
    Station(workers(desk, [ReaderSource("R0", cards[:4])], events, stop), stop).run()
    assert [e.outcome.kind for e in events if e.outcome] == [OutcomeKind.issued] * 4
    assert held_reservations(desk) == [None]  # the fifth member's reservation, given back
    rerun = Station(workers(desk, [QueueSource("R0", cards[4:])], [], threading.Event()),
                    threading.Event()).run()
    assert [o.kind for o in rerun] == [OutcomeKind.issued]
    assert assert_invariants(desk, {c.uid: c for c in cards}) == {"issued": 5}


def test_stop_while_waiting_for_a_card_ends_at_once(desk: Desk) -> None:
    desk.create_batch()
    stop = threading.Event()
    events: list[StationEvent] = []
    patient = Limits(card_wait_s=600.0)
    station = Station(workers(desk, [ReaderSource("R0", [])], events, stop, patient), stop).start()
    while not any(e.kind is EventKind.waiting for e in events):
        time.sleep(0.01)
    stop.set()
    assert station.join(timeout_s=5), "stop was not honoured while waiting for a card"
    assert not any(e.kind is EventKind.error for e in events)  # a requested stop is not an error
    assert held_reservations(desk) == [None]


def test_unplugged_reader_that_never_returns_ends_its_worker(desk: Desk) -> None:
    from tests.issuance.test_station import UnpluggedSource

    desk.create_batch()
    events: list[StationEvent] = []
    stop = threading.Event()
    limits = Limits(card_wait_s=60.0, reader_wait_s=0.3)
    gone = UnpluggedSource("R0", blank_cards("ntag424", 1), gone=10_000)
    assert Station(workers(desk, [gone], events, stop, limits), stop).start().join(timeout_s=10)
    errors = [e.message for e in events if e.kind is EventKind.error]
    assert len(errors) == 1 and "reader unavailable for 0.3 s" in errors[0], errors
    assert held_reservations(desk) == [None]


def test_a_source_that_ignores_stop_and_timeout_makes_the_station_fail_loudly(desk: Desk) -> None:
    desk.create_batch()
    deaf = DeafSource("R0")
    stop = threading.Event()
    limits = Limits(card_wait_s=0.2, step_s=0.2, stop_grace_s=0.3)
    events: list[StationEvent] = []
    station = Station(workers(desk, [deaf], events, stop, limits), stop).start()
    started = time.monotonic()
    try:
        with pytest.raises(StationStuck, match=r"R0: waiting for a card for \d+\.\d s \(bound 0\.4 s\)"):
            station.join()
        assert stop.is_set() and time.monotonic() - started < 5
    finally:
        deaf.let_go.set()
    deadline = time.monotonic() + 5
    while not any(e.kind is EventKind.finished for e in events) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert held_reservations(desk) == [None]  # once let go, the worker still gives its reservation back


def test_database_lost_at_the_last_arrow_reports_failed_and_recover_issues_it(desk: Desk) -> None:
    """'issued' is committed while the card is let go: if that commit fails, the card stays
    'verified' (fully checked) and is reported failed; `batch recover` finishes it without the card."""
    from cardsvc.issuance.recovery import Recovery
    from cardsvc.issuance.workflow import FaultPoint
    from tests.issuance.test_station import flaky

    desk.create_batch()
    (card,) = blank_cards("ntag424", 1)
    events: list[StationEvent] = []
    stop = threading.Event()
    with flaky(desk) as db:

        def unplug_after_verified(point: FaultPoint, _number: str) -> None:
            if point is FaultPoint.verified:
                db.down = True

        def sink(event: StationEvent) -> None:
            events.append(event)
            if event.outcome is not None:
                stop.set()

        worker = Worker(QueueSource("R0", [card]), desk.workflow("R0", hook=unplug_after_verified),
                        desk.journal("R0"), sink, stop, limits=FAST)
        Station([worker], stop).run()
    (outcome,) = [e.outcome for e in events if e.outcome]
    assert outcome.kind is OutcomeKind.failed and outcome.used_reservation
    assert "verified, but recording it issued failed (database:" in outcome.reason
    with desk.sessions() as session:
        row = card_repo.get_card(session, card_number=outcome.card_number or "")
    assert row.state == JournalState.verified
    assert Recovery(desk.workflow(), desk.sessions).finish_verified() == [outcome.card_number]
    assert assert_invariants(desk, {card.uid: card}) == {"issued": 1}
