"""The station through the real stack: pyscard → private pcscd → vpcd → emulated NTAG 424 DNA cards.

Readers run in parallel (one worker each); cards are fed like a clerk placing them; tears cut
power mid-APDU inside the emulator, and the torn card is placed again on the same reader.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.runtime import Faults, Slot
from cardsvc.issuance.readers import PcscReaderSource
from cardsvc.issuance.station import Station, StationEvent, Worker
from cardsvc.issuance.workflow import OutcomeKind
from tests.issuance.invariants import assert_invariants
from tests.issuance.support import Desk, blank_cards, key_store, profile, seed_members
from tests.issuance.test_faults import apdus_per_card
from tests.support.pcsc_stack import PcscStack

pytestmark = pytest.mark.pcsc
PICK_UP_S = 1.0  # pcscd polls card presence every 400 ms
READERS = 4


def run(desk: Desk, stack: PcscStack, events: list[StationEvent], expected: int | None = None) -> None:
    """Run one worker per reader until the batch is done (or ``expected`` cards were seen)."""
    stop = threading.Event()
    lock = threading.Lock()

    def sink(event: StationEvent) -> None:
        with lock:
            events.append(event)
            if expected is not None and sum(e.outcome is not None for e in events) >= expected:
                stop.set()  # the clerk has no more cards: Ctrl-C

    workers = [Worker(PcscReaderSource(name, removal_timeout_s=10), desk.workflow(name), desk.journal(name),
                      sink, stop) for name in stack.reader_names]
    station = Station(workers, stop).start()
    assert station.join(timeout_s=120), "station did not finish"


def test_two_readers_issue_a_batch_through_pcscd(desk: Desk, pcsc_stack: Callable[[int], PcscStack]) -> None:
    seed_members(desk.engine, 1, start=100)  # 6 members
    desk.create_batch()
    # 6 blanks per reader: a reader whose deck ran out while it held the last member would wait for
    # a card that never comes (a worker may issue more than half the batch)
    cards = blank_cards("ntag424", 12)
    stack = pcsc_stack(2)
    stack.emulate([cards[0::2], cards[1::2]], feed=True)
    events: list[StationEvent] = []
    run(desk, stack, events)
    outcomes = [e.outcome for e in events if e.outcome]
    assert [o.kind for o in outcomes] == [OutcomeKind.issued] * 6, [o.reason for o in outcomes]
    assert {e.reader for e in events if e.outcome} == set(stack.reader_names)
    assert assert_invariants(desk, {c.uid: c for c in cards}) == {"issued": 6}


def tear_feeder(slot: Slot, schedule: list[int | None]) -> Callable[[Slot, VirtualCard, int], None]:
    """Set the fault for each next presentation from ``schedule`` as cards leave the reader; a torn
    card stays off the reader for a moment (a clerk picks it up), so pcscd sees the reader empty."""
    slot.faults = Faults(tear_after=schedule[0])
    position = iter(schedule[1:])

    def on_removed(_slot: Slot, _card: VirtualCard, _number: int) -> None:
        if slot.faults.tear_after is not None:
            time.sleep(PICK_UP_S)
        slot.faults = Faults(tear_after=next(position, None))

    return on_removed


@pytest.mark.parametrize("family", ["ntag424", "fmcos"])
def test_tear_after_every_apdu_through_pcscd_then_present_again(
        engine: Engine, tmp_path: Path, pcsc_stack: Callable[[int], PcscStack], family: str) -> None:
    chosen = profile("ntag424-dna" if family == "ntag424" else "fmcos-cpu")
    seed_members(engine, 3)
    desk = Desk(engine, key_store(tmp_path / "keys", chosen), chosen)
    desk.create_batch()
    total = apdus_per_card(desk, family)
    seed_members(desk.engine, total + 2, start=100)
    desk.create_batch("PCSC-TEAR")
    cards = blank_cards(family, total, first_uid=300)
    stack = pcsc_stack(READERS)
    queues: list[list[VirtualCard]] = [[] for _ in range(READERS)]
    schedules: list[list[int | None]] = [[] for _ in range(READERS)]
    for k, card in enumerate(cards):
        queues[k % READERS] += [card, card]
        schedules[k % READERS] += [k, None]
    stack.emulate(queues, feed=True)
    for index in range(READERS):
        stack.slot(index).on_removed = tear_feeder(stack.slot(index), schedules[index])
    events: list[StationEvent] = []
    run(desk, stack, events, expected=2 * total)
    outcomes = [e.outcome for e in events if e.outcome]
    assert len(outcomes) == 2 * total
    kinds = [o.kind for o in outcomes]
    assert kinds.count(OutcomeKind.failed) + kinds.count(OutcomeKind.spoiled) >= total - 1
    states = assert_invariants(desk, {c.uid: c for c in cards})
    assert states["issued"] >= total - 1, states
