"""Review fixes: host-side key problems never spoil a chip; a restarted station takes back its own
reservation; ``batch recover`` leaves running stations alone and a worker survives a lost reservation."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from typer.testing import CliRunner

from cardsvc.cli.main import build_app
from cardsvc.emulator.base import VirtualCard
from cardsvc.errors import CredentialError, KeyStoreError
from cardsvc.issuance.recovery import Recovery
from cardsvc.issuance.station import MAX_FAILS_PER_RESERVATION, EventKind, Station, StationEvent, Worker
from cardsvc.issuance.workflow import CardWorkflow, FaultPoint, OutcomeKind
from cardsvc.registry.card_repo import get_card
from cardsvc.registry.cards import JournalState
from cardsvc.transport.base import CardConnection
from tests.issuance.support import Desk, QueueSource, apdu_count, blank_cards, clock, seed_members
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


class _VoidsFirst(QueueSource):
    """A reader whose first card arrives just after ``batch recover --all-stations`` voided every
    held reservation (the station is still running)."""

    def __init__(self, name: str, cards: list[VirtualCard], desk: Desk) -> None:
        super().__init__(name, cards)
        self._desk = desk
        self.voided: list[str] = []

    def next_card(self, stop: threading.Event, timeout_s: float = 0.0) -> CardConnection | None:
        if not self.voided:
            self.voided = Recovery(self._desk.workflow("recover"), self._desk.sessions).void_reservations()
        return super().next_card(stop, timeout_s)


def test_a_worker_whose_reservation_was_voided_goes_on_with_a_fresh_one(desk: Desk) -> None:
    desk.create_batch()
    stop = threading.Event()
    source = _VoidsFirst("R0", blank_cards("ntag424", 3, first_uid=760), desk)
    events: list[StationEvent] = []
    worker = Worker(source, desk.workflow("R0"), desk.journal("R0"), events.append, stop)
    outcomes = Station([worker], stop).run()
    assert len(source.voided) == 1
    kinds = [o.kind for o in outcomes]
    assert kinds == [OutcomeKind.failed, OutcomeKind.issued, OutcomeKind.issued]
    assert "no longer reserved" in outcomes[0].reason and "fresh one" in outcomes[0].reason
    assert source.voided[0] not in {o.card_number for o in outcomes[1:]}


def test_repeated_failures_give_the_held_reservation_back(desk: Desk) -> None:
    desk.create_batch()
    stop = threading.Event()
    chips = blank_cards("ntag424", MAX_FAILS_PER_RESERVATION, first_uid=770)
    source = QueueSource("R0", chips, tear_at=lambda _i: 0)  # every card torn at its first APDU
    worker = Worker(source, desk.workflow("R0"), desk.journal("R0"), lambda _e: None, stop)
    held: list[str] = []
    worker.workflow.hook = lambda point, number: held.append(number) if point is FaultPoint.reserved else None
    outcomes = Station([worker], stop).run()
    assert [o.kind for o in outcomes] == [OutcomeKind.failed] * MAX_FAILS_PER_RESERVATION
    assert len(held) == 2  # the first reservation was given back after N failures, then a second taken
    with desk.sessions() as session:
        first = get_card(session, card_number=held[0])
    assert (first.state, first.station) == (JournalState.reserved.value, None)


def _bound(desk: Desk, station: str, uid: int) -> str:
    """A card of ``station`` left ``written`` (the station died after writing it)."""

    def crash(point: FaultPoint, card_number: str) -> None:
        if point is FaultPoint.written:
            raise _Crash(card_number)

    wf = desk.workflow(station, hook=crash)
    reservation = wf.journal.reserve(desk.batch)
    assert reservation is not None
    with pytest.raises(_Crash):
        wf.process(DirectConnection(blank_cards("ntag424", 1, first_uid=uid)[0]), reservation)
    return reservation.card_number


def test_recover_for_one_station_leaves_the_others_alone(desk: Desk) -> None:
    seed_members(desk.engine, 4, start=100)
    desk.create_batch()
    dead_written = _bound(desk, "pc1:R0", 780)
    live_written = _bound(desk, "pc2:R0", 781)
    dead_held = desk.journal("pc1:R1").reserve(desk.batch)
    live_held = desk.journal("pc2:R1").reserve(desk.batch)
    assert dead_held is not None and live_held is not None
    report = Recovery(desk.workflow("pc1:recover"), desk.sessions).run(
        [], lambda _e: None, station="pc1", abandon_missing=True)
    assert (report.voided, report.abandoned) == ((dead_held.card_number,), (dead_written,))
    assert _state(desk, live_held.card_number) == JournalState.reserved.value
    assert _state(desk, live_written) == JournalState.written.value
    assert report.unresolved == (live_written,)


def test_cli_recover_needs_a_station_or_all_stations() -> None:
    result = CliRunner().invoke(build_app(), ["batch", "recover", "B1", "--no-cards"])
    assert result.exit_code == 2
    assert "--all-stations" in result.output
    both = CliRunner().invoke(build_app(), ["batch", "recover", "B1", "--station", "pc1", "--all-stations"])
    assert both.exit_code == 2
