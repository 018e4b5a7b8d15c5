"""Review fixes: host-side key problems never spoil a chip; a restarted station takes back its own
reservation; ``batch recover`` leaves running stations alone and a worker survives a lost reservation."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from cardsvc.errors import CredentialError, KeyStoreError
from cardsvc.issuance.station import EventKind, Station, StationEvent, Worker
from cardsvc.issuance.workflow import CardWorkflow, FaultPoint, OutcomeKind
from cardsvc.registry.card_repo import get_card
from cardsvc.registry.cards import JournalState
from tests.issuance.support import Desk, QueueSource, apdu_count, blank_cards, clock
from tests.support.cards import DirectConnection


class _Crash(Exception):
    """A simulated station death."""


def _state(desk: Desk, card_number: str | None) -> str:
    assert card_number is not None
    with desk.sessions() as session:
        return str(get_card(session, card_number=card_number).state)


def test_untrusted_signer_kid_fails_the_card_without_spoiling_it(desk: Desk) -> None:
    desk.create_batch()
    good = desk.workflow()
    bad = CardWorkflow(dataclasses.replace(good.ctx, issuer_keys=()), good.journal, clock=clock)
    chip = blank_cards("ntag424", 1, first_uid=700)[0]
    reservation = good.journal.reserve(desk.batch)
    assert reservation is not None
    out = bad.process(DirectConnection(chip), reservation)
    assert (out.kind, out.station_fault, out.used_reservation) == (OutcomeKind.failed, True, True)
    assert "not spoiled" in out.reason
    assert _state(desk, out.card_number) == JournalState.written.value
    again = desk.workflow("station-b").resume(DirectConnection(chip))
    assert (again.kind, again.card_number) == (OutcomeKind.issued, out.card_number)


def test_signer_key_store_error_touches_no_card(desk: Desk) -> None:
    desk.create_batch()
    good = desk.workflow()

    class BrokenSigner:
        alg = good.ctx.signer.alg
        kid = good.ctx.signer.kid

        def sign(self, data: bytes) -> bytes:
            raise KeyStoreError("issuer key cannot be opened")

    bad = CardWorkflow(dataclasses.replace(good.ctx, signer=BrokenSigner()), good.journal, clock=clock)
    reservation = good.journal.reserve(desk.batch)
    assert reservation is not None
    conn = DirectConnection(blank_cards("ntag424", 1, first_uid=710)[0])
    out = bad.process(conn, reservation)
    assert (out.kind, out.station_fault, out.used_reservation) == (OutcomeKind.failed, True, False)
    assert _state(desk, reservation.card_number) == JournalState.reserved.value


def test_missing_master_key_at_verification_is_the_hosts_fault(desk: Desk) -> None:
    desk.create_batch()

    def crash_after_written(point: FaultPoint, card_number: str) -> None:
        if point is FaultPoint.written:
            raise _Crash(card_number)

    first = desk.workflow(hook=crash_after_written)
    chip = blank_cards("ntag424", 1, first_uid=720)[0]
    reservation = first.journal.reserve(desk.batch)
    assert reservation is not None
    with pytest.raises(_Crash):
        first.process(DirectConnection(chip), reservation)
    keys = desk.ctx.master_keys
    lacking = dataclasses.replace(keys, keys={})
    bad = CardWorkflow(dataclasses.replace(desk.ctx, master_keys=lacking), desk.journal(), clock=clock)
    out = bad.resume(DirectConnection(chip))
    assert (out.kind, out.station_fault) == (OutcomeKind.failed, True)
    assert _state(desk, reservation.card_number) == JournalState.written.value
    assert desk.workflow().resume(DirectConnection(chip)).kind is OutcomeKind.issued


def test_station_stops_on_a_host_side_fault_and_spoils_nothing(desk: Desk) -> None:
    desk.create_batch()
    wf = desk.workflow()
    real = wf.ctx.signer
    calls = []

    class FailsAfterProbe:
        alg = real.alg
        kid = real.kid

        def sign(self, data: bytes) -> bytes:
            calls.append(1)
            if len(calls) > 1:
                raise KeyStoreError("issuer key went away")
            return real.sign(data)

    bad = CardWorkflow(dataclasses.replace(wf.ctx, signer=FailsAfterProbe()), wf.journal, clock=clock)
    stop = threading.Event()
    source = QueueSource("R0", blank_cards("ntag424", 3, first_uid=740))
    events: list[StationEvent] = []
    outcomes = Station([Worker(source, bad, wf.journal, events.append, stop)], stop).run()
    assert [(o.kind, o.station_fault) for o in outcomes] == [(OutcomeKind.failed, True)]
    assert any(e.kind is EventKind.error and "station stopped" in e.message for e in events)
    assert stop.is_set()
    assert len(source.connections) == 1


def test_misconfigured_station_fails_at_start_before_any_card(desk: Desk) -> None:
    desk.create_batch()
    stop = threading.Event()
    source = QueueSource("R0", blank_cards("ntag424", 2, first_uid=730))
    wf = desk.workflow()
    bad = CardWorkflow(dataclasses.replace(wf.ctx, issuer_keys=()), wf.journal, clock=clock)
    events: list[StationEvent] = []
    with pytest.raises(CredentialError, match="no trusted issuer key"):
        Station([Worker(source, bad, wf.journal, events.append, stop)], stop).start()
    assert apdu_count([source]) == 0
    assert events == []


def test_a_restarted_station_takes_back_its_own_reservation(desk: Desk) -> None:
    desk.create_batch()
    held = desk.journal("R0").reserve(desk.batch)  # the station dies right after reserving
    assert held is not None
    other = desk.journal("R1").reserve(desk.batch)
    assert other is not None and other.card_number != held.card_number  # not someone else's
    stop = threading.Event()
    source = QueueSource("R0", blank_cards("ntag424", 1, first_uid=750))
    worker = Worker(source, desk.workflow("R0"), desk.journal("R0"), lambda _e: None, stop)
    outcomes = Station([worker], stop).run()
    assert [(o.kind, o.card_number) for o in outcomes] == [(OutcomeKind.issued, held.card_number)]
    assert _state(desk, held.card_number) == JournalState.issued.value
