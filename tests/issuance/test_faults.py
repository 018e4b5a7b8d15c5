"""Faults through DirectConnection: tear at every APDU of a personalisation mid-batch, and the
station dying at every journal step (named fault points), then recovery by reading the card."""

from __future__ import annotations

import threading

import pytest

from cardsvc.issuance.recovery import Recovery
from cardsvc.issuance.station import Station, StationEvent, Worker
from cardsvc.issuance.workflow import FaultPoint, OutcomeKind
from cardsvc.registry.cards import JournalState
from tests.issuance.invariants import assert_invariants
from tests.issuance.support import Desk, QueueSource, blank_cards, seed_members
from tests.support.cards import DirectConnection


class Crash(BaseException):
    """The station process dies here (not an Exception: nothing in cardsvc may catch it)."""


def apdus_per_card(desk: Desk, family: str = "ntag424") -> int:
    """How many APDUs one clean issue takes (reservation → issued), measured on a spare card."""
    workflow = desk.workflow("probe")
    (card,) = blank_cards(family, 1, first_uid=999)
    conn = DirectConnection(card)
    outcome = workflow.process(conn, workflow.journal.reserve(desk.batch))  # type: ignore[arg-type]
    assert outcome.kind is OutcomeKind.issued
    return len(conn.sent)


def run_station(desk: Desk, sources: list[QueueSource], events: list[StationEvent] | None = None,
                actor: str = "station-a") -> None:
    stop = threading.Event()
    sink = (events.append if events is not None else lambda _e: None)
    workers = [Worker(s, desk.workflow(f"{actor}:{s.name}"), desk.journal(f"{actor}:{s.name}"), sink, stop)
               for s in sources]
    Station(workers, stop).run()


def test_tear_after_every_apdu_mid_batch_then_recover(desk: Desk) -> None:
    desk.create_batch()
    total = apdus_per_card(desk)
    assert total > 20
    seed_members(desk.engine, total + 5, start=100)
    desk.create_batch("TEAR")
    cards = blank_cards("ntag424", total)
    queue = [c for c in cards for _ in range(2)]  # each card torn once, then presented again
    source = QueueSource("R0", queue, tear_at=lambda i: i // 2 if i % 2 == 0 else None)
    events: list[StationEvent] = []
    run_station(desk, [source], events)
    outcomes = [e.outcome for e in events if e.outcome is not None]
    assert len(outcomes) == 2 * total
    torn, again = outcomes[0::2], outcomes[1::2]
    assert all(o.kind in (OutcomeKind.failed, OutcomeKind.spoiled) for o in torn)
    assert all(o.kind in (OutcomeKind.issued, OutcomeKind.spoiled) for o in again), \
        [(i, o.kind, o.reason) for i, o in enumerate(again) if o.kind not in ("issued", "spoiled")]
    states = assert_invariants(desk, {c.uid: c for c in cards})
    assert states["issued"] >= total - 2, states  # only the last key change may leave a card unusable
    assert sum(o.kind is OutcomeKind.issued for o in again) == states["issued"] - 1  # + the probe card


@pytest.mark.parametrize("point", list(FaultPoint))
def test_crash_at_every_journal_step_then_recover(desk: Desk, point: FaultPoint) -> None:
    desk.create_batch()
    fired: list[str] = []

    def hook(at: FaultPoint, number: str) -> None:
        if at is point and not fired:
            fired.append(number)
            raise Crash(at.value)

    workflow = desk.workflow("crashing", hook=hook)
    (card,) = blank_cards("ntag424", 1)
    reservation = workflow.journal.reserve(desk.batch)
    assert reservation is not None
    with pytest.raises(Crash):
        if point is FaultPoint.reserved:
            hook(FaultPoint.reserved, reservation.card_number)  # the station's hook after reserving
        workflow.process(DirectConnection(card), reservation)
    report = Recovery(desk.workflow("recovery"), desk.sessions).run(
        [QueueSource("R0", [card])], lambda _e: None)
    assert report.unresolved == ()
    states = assert_invariants(desk, {card.uid: card})
    if point is FaultPoint.reserved:
        assert report.voided == (reservation.card_number,) and states == {"voided": 1}
        run_station(desk, [QueueSource("R0", [card])])  # the member gets a new number on the next run
        states = assert_invariants(desk, {card.uid: card})
        assert states["issued"] == 1
    else:
        assert states == {"issued": 1}, (point, report)
    with desk.sessions() as session:
        from cardsvc.registry import card_repo

        issued = [c for c in card_repo.cards_of_member(session, member_id=reservation.member_id)
                  if c.state == JournalState.issued]
    assert len(issued) == 1
