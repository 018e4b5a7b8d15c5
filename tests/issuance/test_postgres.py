"""Several stations on one PostgreSQL: concurrent reservations never share a number or a member,
two batches holding the same member give them one live card, and a database stopped mid-batch
costs no card (no APDU without a committed reservation; the batch resumes when it is back)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from cardsvc.issuance.batches import Selection
from cardsvc.issuance.station import EventKind, Station, StationEvent, Worker
from cardsvc.issuance.workflow import OutcomeKind
from cardsvc.profiles import Profile
from cardsvc.registry.cards import Card
from tests.issuance.invariants import assert_invariants
from tests.issuance.support import Desk, QueueSource, blank_cards, key_store, migrated_engine, seed_members
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()  # raises with the reason if it cannot: never a skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_engine(server: PostgresServer) -> Iterator[Engine]:
    engine = migrated_engine(server.url(server.create_database()))
    yield engine
    engine.dispose()


@pytest.fixture
def pg_desk(pg_engine: Engine, tmp_path: Path, ntag_profile: Profile) -> Desk:
    seed_members(pg_engine, 40)
    return Desk(pg_engine, key_store(tmp_path / "keys", ntag_profile), ntag_profile)


def test_concurrent_reservations_from_eight_stations(pg_desk: Desk) -> None:
    pg_desk.create_batch()
    taken: list[Card] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def station(name: str) -> None:
        journal = pg_desk.journal(name)
        start.wait()
        while (card := journal.reserve(pg_desk.batch)) is not None:
            with lock:
                taken.append(card)

    threads = [threading.Thread(target=station, args=(f"S{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(taken) == 40
    assert len({c.card_number for c in taken}) == 40
    assert len({c.member_id for c in taken}) == 40
    sequences = sorted(int(c.card_number[4:-1]) for c in taken)
    assert sequences == list(range(1, 41))  # no number lost to a rolled-back race
    assert len(Counter(c.station for c in taken)) > 1


def test_same_member_in_two_batches_on_two_stations_gets_one_card(pg_desk: Desk) -> None:
    pg_desk.create_batch("A", selection=Selection(org_code="G1"))
    batch_a = pg_desk.batch
    pg_desk.create_batch("B", selection=Selection(org_code="T01"), prefix="32")
    batch_b = pg_desk.batch
    results: dict[str, list[Card]] = {"A": [], "B": []}
    start = threading.Barrier(2)

    def station(label: str) -> None:
        journal = pg_desk.journal(f"station-{label}")
        batch = batch_a if label == "A" else batch_b
        start.wait()
        while (card := journal.reserve(batch)) is not None:
            results[label].append(card)

    threads = [threading.Thread(target=station, args=(label,)) for label in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    members = [c.member_id for cards in results.values() for c in cards]
    assert len(members) == 40 and len(set(members)) == 40  # each member reserved exactly once
    with pg_desk.sessions() as session:
        live = Counter(c.member_id for c in session.exec(select(Card)) if c.live)
    assert max(live.values()) == 1


def test_database_stopped_mid_batch(pg_desk: Desk, server: PostgresServer) -> None:
    pg_desk.create_batch(selection=Selection(org_code="G1"))
    cards = blank_cards("ntag424", 6)
    source = QueueSource("R0", cards)
    stop = threading.Event()
    events: list[StationEvent] = []
    restarted = threading.Event()

    def sink(event: StationEvent) -> None:
        events.append(event)
        issued = sum(1 for e in events if e.outcome and e.outcome.kind is OutcomeKind.issued)
        if issued == 2 and not restarted.is_set() and event.outcome is not None:
            restarted.set()
            server._run("pg_ctl", "-D", str(server.data_dir), "-m", "fast", "-w", "stop")
            threading.Timer(1.5, _start_again, args=(server,)).start()
        if issued == 6:
            stop.set()

    worker = Worker(source, pg_desk.workflow(), pg_desk.journal(), sink, stop)
    Station([worker], stop).start().join(timeout_s=90)
    errors = [e for e in events if e.kind is EventKind.error]
    assert errors and all("no card touched" in e.message for e in errors)
    outcomes = [e.outcome for e in events if e.outcome]
    assert [o.kind for o in outcomes] == [OutcomeKind.issued] * 6
    assert len(source.connections) == 6  # no card was taken while the database was down
    pg_desk.engine.dispose()
    assert assert_invariants(pg_desk, {c.uid: c for c in cards})["issued"] == 6


def _start_again(server: PostgresServer) -> None:
    options = [f"-p {server.port}", f"-k {server.socket_dir}", "-h 127.0.0.1",
               "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    server._run("pg_ctl", "-D", str(server.data_dir), "-l", str(server.root / "server.log"), "-w",
                "-t", "60", "-o", " ".join(options), "start")
