"""The station: several readers in parallel, refusals, an unreachable database, clean stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from cardsvc.emulator.echo import EchoCard
from cardsvc.errors import ReaderUnavailable
from cardsvc.issuance.station import EventKind, Station, StationEvent, Worker
from cardsvc.issuance.workflow import OutcomeKind
from cardsvc.registry.cards import JournalState
from tests.issuance.invariants import assert_invariants
from tests.issuance.support import Desk, QueueSource, blank_cards, key_store, seed_members
from tests.support.cards import DirectConnection


def station(desk: Desk, sources: list[QueueSource], events: list[StationEvent],
            stop: threading.Event | None = None) -> Station:
    stop = stop or threading.Event()
    workers = [Worker(s, desk.workflow(s.name), desk.journal(s.name), events.append, stop) for s in sources]
    return Station(workers, stop)


def test_four_readers_issue_the_whole_batch(desk: Desk) -> None:
    seed_members(desk.engine, 15, start=100)  # 20 members in all
    desk.create_batch()
    cards = blank_cards("ntag424", 24)
    sources = [QueueSource(f"R{i}", cards[i::4]) for i in range(4)]
    events: list[StationEvent] = []
    outcomes = station(desk, sources, events).run()
    assert sorted(o.kind for o in outcomes).count(OutcomeKind.issued) == 20
    used = {e.reader for e in events if e.outcome and e.outcome.kind is OutcomeKind.issued}
    assert used == {"R0", "R1", "R2", "R3"}
    states = assert_invariants(desk, {c.uid: c for c in cards})
    assert states == {"issued": 20}
    assert sum(len(c.sent) for s in sources for c in s.connections) == sum(
        len(c.sent) for s in sources for c in s.connections if c.sent)  # no connection left unused
    finished = [e for e in events if e.kind is EventKind.finished]
    assert len(finished) == 4


def test_refuses_wrong_profile_and_foreign_cards_without_writing(desk: Desk, tmp_path) -> None:  # type: ignore[no-untyped-def]
    desk.create_batch()
    echo = EchoCard.blank(uid=bytes.fromhex("04000000000001"))
    foreign = blank_cards("ntag424", 1, first_uid=77)[0]
    other = Desk(desk.engine, key_store(tmp_path / "other-keys", desk.profile), desk.profile)
    other.create_batch("OTHER", prefix="77")
    other_flow = other.workflow("elsewhere")
    theirs_reserved = other_flow.journal.reserve(other.batch)
    assert theirs_reserved is not None
    assert other_flow.process(DirectConnection(foreign), theirs_reserved).kind is OutcomeKind.issued
    before = foreign.to_image()
    workflow = desk.workflow()
    reservation = workflow.journal.reserve(desk.batch)
    assert reservation is not None
    wrong = workflow.process(DirectConnection(echo), reservation)
    assert wrong.kind is OutcomeKind.refused and "unexpected profile (ATR 3B88" in wrong.reason
    assert not wrong.used_reservation and echo.stored == b""
    conn = DirectConnection(foreign)
    theirs = workflow.process(conn, reservation)
    assert theirs.kind is OutcomeKind.refused and "not blank" in theirs.reason, theirs.reason
    assert foreign.to_image() == before
    assert all(apdu[:2] not in (b"\x90\x8d", b"\x90\xc4", b"\x90\x5f") for apdu in conn.sent)


class FlakySessions:
    """A session factory whose database can be 'unplugged'."""

    def __init__(self, desk: Desk) -> None:
        self._inner = desk.sessions
        self.down = False

    def __call__(self) -> Session:
        if self.down:
            raise OperationalError("connect", {}, ConnectionRefusedError("database is down"))
        return self._inner()  # type: ignore[no-any-return]


@contextmanager
def flaky(desk: Desk) -> Iterator[FlakySessions]:
    sessions = FlakySessions(desk)
    original = Desk.sessions
    Desk.sessions = property(lambda _self: sessions)  # type: ignore[assignment,method-assign]
    try:
        yield sessions
    finally:
        Desk.sessions = original  # type: ignore[method-assign]


def test_database_down_sends_no_apdu_until_a_reservation_commits(desk: Desk) -> None:
    desk.create_batch()
    cards = blank_cards("ntag424", 1)
    source = QueueSource("R0", cards)
    events: list[StationEvent] = []
    with flaky(desk) as db:
        db.down = True
        run = station(desk, [source], events).start()
        time.sleep(0.3)
        assert source.connections == []  # waiting for the database, no card touched
        assert any(e.kind is EventKind.error and "no card touched" in e.message for e in events)
        db.down = False
        assert run.join(timeout_s=10)
    assert [e.outcome.kind for e in events if e.outcome] == [OutcomeKind.issued]
    assert assert_invariants(desk, {c.uid: c for c in cards})["issued"] == 1


def test_database_lost_after_reservation_never_binds_or_writes(desk: Desk) -> None:
    desk.create_batch()
    (card,) = blank_cards("ntag424", 1)
    with flaky(desk) as db:
        workflow = desk.workflow()
        reservation = workflow.journal.reserve(desk.batch)
        assert reservation is not None
        db.down = True
        conn = DirectConnection(card)
        try:
            workflow.process(conn, reservation)
        except Exception as exc:  # the worker turns this into a 'failed' outcome
            assert getattr(exc, "code", "") == "database"
        else:
            raise AssertionError("processing without a database must fail")
    assert all(apdu[:2] not in (b"\x90\x8d", b"\x90\xc4", b"\x90\x5f", b"\x90\x71") for apdu in conn.sent)
    assert card.to_image() == blank_cards("ntag424", 1)[0].to_image()
    with desk.sessions() as session:
        from cardsvc.registry import card_repo

        assert card_repo.get_card(session, card_number=reservation.card_number).state == JournalState.reserved


def test_stop_finishes_the_current_card_and_releases_the_reservation(desk: Desk) -> None:
    desk.create_batch()
    cards = blank_cards("ntag424", 5)
    stop = threading.Event()
    events: list[StationEvent] = []

    def sink(event: StationEvent) -> None:
        events.append(event)
        if event.outcome is not None:
            stop.set()  # Ctrl-C right after the first card

    workers = [Worker(QueueSource("R0", cards), desk.workflow(), desk.journal(), sink, stop)]
    Station(workers, stop).run()
    assert [e.outcome.kind for e in events if e.outcome] == [OutcomeKind.issued]
    states = assert_invariants(desk, {c.uid: c for c in cards})
    assert states == {"issued": 1}  # the next reservation was never taken, or was given back
    rerun = station(desk, [QueueSource("R0", cards[1:])], []).run()  # rerunning resumes
    assert [o.kind for o in rerun] == [OutcomeKind.issued] * 4
    assert assert_invariants(desk, {c.uid: c for c in cards}) == {"issued": 5}


class UnpluggedSource(QueueSource):
    """A reader that is gone for its first ``gone`` polls, then comes back."""

    def __init__(self, name: str, cards: list, gone: int) -> None:  # type: ignore[type-arg]
        super().__init__(name, cards)
        self.gone = gone

    def next_card(self, stop: threading.Event, timeout_s: float = 0.0):  # type: ignore[no-untyped-def]
        if self.gone:
            self.gone -= 1
            raise ReaderUnavailable(f"{self.name}: reader unplugged")
        return super().next_card(stop, timeout_s)


def test_unplugged_reader_pauses_its_worker_while_others_go_on(desk: Desk, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("cardsvc.issuance.station.RETRY_S", 0.05)
    desk.create_batch()
    cards = blank_cards("ntag424", 5)
    events: list[StationEvent] = []
    sources = [UnpluggedSource("R0", cards[:1], gone=3), QueueSource("R1", cards[1:])]
    station(desk, sources, events).run()
    paused = [e for e in events if e.kind is EventKind.paused]
    assert len(paused) == 3 and {e.reader for e in paused} == {"R0"}
    assert "unplugged" in paused[0].message
    by_reader = {r: [e.outcome.kind for e in events if e.outcome and e.reader == r] for r in ("R0", "R1")}
    assert by_reader == {"R0": [OutcomeKind.issued], "R1": [OutcomeKind.issued] * 4}
    assert assert_invariants(desk, {c.uid: c for c in cards}) == {"issued": 5}


def test_a_card_of_another_installed_profile_is_named(desk: Desk) -> None:
    from tests.issuance.support import profile

    desk.create_batch()
    fmcos = profile("fmcos-cpu")
    desk.ctx.profiles = {desk.profile.name: desk.profile, fmcos.name: fmcos}
    (stranger,) = blank_cards("fmcos", 1)
    before = stranger.to_image()
    workflow = desk.workflow()
    outcome = workflow.process(DirectConnection(stranger), workflow.journal.reserve(desk.batch))  # type: ignore[arg-type]
    assert outcome.kind is OutcomeKind.refused
    assert "(a fmcos-cpu card); batch B1 issues ntag424-dna" in outcome.reason
    assert stranger.to_image() == before
