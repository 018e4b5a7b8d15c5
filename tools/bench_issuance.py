"""Issuance throughput through the real stack: pyscard → private pcscd → vpcd → emulated NTAG 424 DNA.

Runs, in one go (needs root, pcscd, vsmartcard-vpcd, util-linux — as the test suite does):

1. the loopback APDU floor: an echo card, small APDUs, median round trip;
2. host overhead per card, in process (DirectConnection, no transport): the whole journal path —
   reservation, binding, signing, personalisation, read-back, credential + SUN checks, five commits
   on SQLite (WAL, synchronous=FULL) — minus the time the emulated chip itself spends computing;
3. bare personalisation (driver only: personalise, read back, SUN check; no database, no signing)
   on one reader, for the journal overhead;
4. the station issuing N cards on 1 reader, then N more on 4 readers (one worker thread each), the
   emulator in a separate process so its CPU is not the station's;

and prints cards/min, APDUs per card, the speed-up from 1 to 4 readers, and the projected time of a
20,000-card batch on real readers at 15 and 40 ms per APDU.

    sudo .venv/bin/python tools/bench_issuance.py [--cards 1000] [--bare 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, insert

from cardsvc.credential.claims import CredentialClaims
from cardsvc.credential.cose import Algorithm
from cardsvc.credential.filestore import FileKeyStore
from cardsvc.drivers.base import PersonalisationPlan
from cardsvc.emulator.base import VirtualCard, card_class
from cardsvc.emulator.direct import DirectLink
from cardsvc.emulator.echo import EchoCard
from cardsvc.emulator.pcscd import SOCKET_ENV, PrivatePcscd, new_private_pcscd
from cardsvc.emulator.runtime import Emulator, Slot
from cardsvc.issuance.batches import BatchService, BatchSpec, Selection, batch_context
from cardsvc.issuance.journal import Journal
from cardsvc.issuance.keys import ensure_master_keys, ensure_uid_index
from cardsvc.issuance.proofs import check_card_proof
from cardsvc.issuance.readers import PcscReaderSource
from cardsvc.issuance.station import Station, StationEvent, Worker
from cardsvc.issuance.workflow import BatchContext, CardWorkflow, OutcomeKind
from cardsvc.profiles import Profile, load_profile
from cardsvc.registry.db import make_engine, session_factory, upgrade_to_head
from cardsvc.registry.models import Member, Organisation
from cardsvc.transport import pcsc

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "XCGH"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
REAL_APDU_MS = (15.0, 40.0)
PROJECTED_CARDS = 20_000


# --- set-up ---------------------------------------------------------------------------------------


def clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def seed(engine: Engine, groups: dict[str, int]) -> None:
    """One organisation per group code with that many members (no PII needed for issuance)."""
    orgs = [{"id": 1, "code": "D01", "name": "某区总工会", "kind": "district_federation", "parent_id": None}]
    members, next_id = [], 1
    for index, (code, count) in enumerate(groups.items(), start=2):
        orgs.append({"id": index, "code": code, "name": f"{code} 工会", "kind": "enterprise_union",
                     "parent_id": 1})
        for _ in range(count):
            members.append({"id": next_id, "public_id": f"{next_id:032x}", "name": "张三丰",
                            "status": "active", "org_id": index, "created_at": NOW, "updated_at": NOW})
            next_id += 1
    with engine.begin() as conn:
        conn.execute(insert(Organisation), orgs)
        conn.execute(insert(Member), members)


@dataclass
class Bench:
    engine: Engine
    store: FileKeyStore
    profile: Profile

    def context(self, label: str, org: str) -> BatchContext:
        spec = BatchSpec(label=label, profile=self.profile, prefix="31", year=NOW.year, valid_days=1095,
                         selection=Selection(org_code=org))
        sessions = session_factory(self.engine)
        BatchService(sessions).create(spec, self.store, issuer=ISSUER)
        batch = BatchService(sessions).get(label)
        return batch_context(batch, {self.profile.name: self.profile}, self.store, issuer=ISSUER,
                             public_base_url="https://verify.example.cn", now=clock())


def make_bench(workdir: Path, cards: int, direct: int, db_dir: Path | None = None) -> Bench:
    engine = make_engine(f"sqlite:///{(db_dir or workdir) / 'bench.sqlite3'}")
    upgrade_to_head(engine)
    seed(engine, {"DIRECT": direct, "ONE": cards, "FOUR": cards})
    store = FileKeyStore(workdir / "keys", "bench", scrypt_n=2**10)
    store.create_issuer_key(Algorithm.eddsa, not_before=NOW - dt.timedelta(days=1))
    profile = load_profile(ROOT / "firmware_profiles" / "ntag424-dna.toml")
    ensure_master_keys(store, profile)
    ensure_uid_index(store)
    return Bench(engine, store, profile)


def blank(count: int, first: int) -> list[VirtualCard]:
    factory = card_class("ntag424")
    return [factory.blank(uid=b"\x04" + (first + i).to_bytes(6, "big")) for i in range(count)]


# --- the emulator, in its own process ----------------------------------------------------------


def _emulate(ports: list[int], decks: list[list[VirtualCard]], feed: bool, ready: threading.Event,
             done: threading.Event) -> None:
    pairs = enumerate(zip(ports, decks, strict=True))
    slots = [Slot(i, port, cards=deck, feed=feed) for i, (port, deck) in pairs]
    emulator = Emulator(slots).start()
    ready.set()
    done.wait()
    emulator.stop()


class EmulatorProcess:
    """Slots serving ``decks`` (one per reader port) in a forked process."""

    def __init__(self, ports: list[int], decks: list[list[VirtualCard]], *, feed: bool = True) -> None:
        ctx = multiprocessing.get_context("fork")
        self._ready, self._done = ctx.Event(), ctx.Event()
        self._process = ctx.Process(target=_emulate, args=(ports, decks, feed, self._ready, self._done),
                                    daemon=True)

    def __enter__(self) -> EmulatorProcess:
        self._process.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


# --- measurements ----------------------------------------------------------------------------------


def loopback_floor(pcscd: PrivatePcscd, rounds: int = 2000) -> float:
    """Median seconds per APDU round trip with a card that does nothing."""
    name = pcscd.reader_names[0]
    with EmulatorProcess(pcscd.ports[:1], [[EchoCard.blank()]], feed=False):
        pcsc.wait_for_card(name, 10)
        with pcsc.connect(name) as conn:
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                conn.transmit(bytes.fromhex("FFCA000000"))
                samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class TimedCard:
    """Wraps a virtual card to time its own computing (the chip's share of a round trip)."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.seconds = 0.0
        self.apdus = 0

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def power_on(self) -> None:
        self.card.power_on()

    def process(self, apdu: bytes) -> bytes:
        start = time.perf_counter()
        try:
            return self.card.process(apdu)
        finally:
            self.seconds += time.perf_counter() - start
            self.apdus += 1


def host_overhead(bench: Bench, cards: int) -> tuple[float, float]:
    """(host seconds per card, APDUs per card) through the journal, in process."""
    ctx = bench.context("DIRECT", "DIRECT")
    workflow = CardWorkflow(ctx, Journal(session_factory(bench.engine), actor="direct"), clock=clock)
    timed = [TimedCard(c) for c in blank(cards, 1)]
    start = time.perf_counter()
    for chip in timed:
        reservation = workflow.journal.reserve(ctx.batch)
        if reservation is None:
            raise SystemExit("the batch ran out of members")
        outcome = workflow.process(DirectLink(chip, reader="in-process"), reservation)
        if outcome.kind is not OutcomeKind.issued:
            raise SystemExit(f"in-process issue failed: {outcome.reason}")
    wall = time.perf_counter() - start
    chip_time = sum(c.seconds for c in timed)
    return (wall - chip_time) / cards, sum(c.apdus for c in timed) / cards


def bare(pcscd: PrivatePcscd, cards: int, ctx: BatchContext) -> float:
    """Seconds per card for the driver alone (personalise + read back + SUN check) on one reader."""
    now = clock().replace(microsecond=0)
    claims = CredentialClaims(ISSUER, "312500000000", now, now + dt.timedelta(days=1095), "n424", 1)
    plan = PersonalisationPlan("312500000000", ctx.sign(claims), ctx.master_keys, ctx.sun_base_url)
    name = pcscd.reader_names[0]
    source = PcscReaderSource(name)
    stop = threading.Event()
    spent = 0.0
    with EmulatorProcess(pcscd.ports[:1], [blank(cards, 100_000)]):
        for _ in range(cards):
            conn = source.next_card(stop, 30.0)
            if conn is None:
                raise SystemExit("no card came")
            start = time.perf_counter()
            ctx.driver.status(conn)
            readout = ctx.driver.personalise(conn, plan)
            ctx.driver.read_back(conn, ctx.master_keys)
            check_card_proof(ctx.driver, conn, ctx.master_keys, readout.uid)
            spent += time.perf_counter() - start
            source.release(conn)
    return spent / cards


def station(bench: Bench, pcscd: PrivatePcscd, readers: int, cards: int, label: str) -> Run:
    """``cards`` cards spread over ``readers`` readers: wall time, issued, time spent on the cards."""
    ctx = bench.context(label, label)
    sessions = session_factory(bench.engine)
    names, ports = pcscd.reader_names[:readers], pcscd.ports[:readers]
    first = 200_000 if readers == 1 else 300_000
    all_cards = blank(cards, first)
    decks = [all_cards[i::readers] for i in range(readers)]
    issued: list[StationEvent] = []
    stop = threading.Event()
    workers = [Worker(PcscReaderSource(n), CardWorkflow(ctx, Journal(sessions, actor=n), clock=clock),
                      Journal(sessions, actor=n), issued.append, stop) for n in names]
    with EmulatorProcess(ports, decks):
        start = time.perf_counter()
        Station(workers, stop).run()
        seconds = time.perf_counter() - start
    done = [e for e in issued if e.outcome and e.outcome.kind is OutcomeKind.issued]
    return Run(seconds, len(done), sum(e.elapsed_s for e in done))


@dataclass(frozen=True)
class Run:
    seconds: float  # wall clock, including pcscd noticing each card swap (~0.4-0.8 s per card)
    issued: int
    card_seconds: float  # summed time from connect to issued, per worker (no card swaps)

    def per_card(self) -> float:
        return self.card_seconds / max(self.issued, 1)


def projected(apdus: float, host_s: float, readers: int, apdu_ms: float) -> dt.timedelta:
    per_card = apdus * apdu_ms / 1000 + host_s
    seconds = max(PROJECTED_CARDS * per_card / readers, PROJECTED_CARDS * host_s)
    return dt.timedelta(seconds=round(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1000, help="cards per station run")
    parser.add_argument("--bare", type=int, default=200, help="cards for the bare personalisation run")
    parser.add_argument("--direct", type=int, default=200, help="cards for the in-process host overhead")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cardsvc-bench-"))
    pcscd = new_private_pcscd(4, workdir=workdir / "pcscd")
    os.environ[SOCKET_ENV] = str(pcscd.socket_link)
    bench = make_bench(workdir, args.cards, args.direct)
    memory = Path("/dev/shm")  # noqa: S108 - the same journal without fsync cost, for comparison
    fsync_free = make_bench(Path(tempfile.mkdtemp(dir=memory)), 1, args.direct) if memory.is_dir() else None
    with pcscd:
        floor = loopback_floor(pcscd)
        host_s, apdus = host_overhead(bench, args.direct)
        if fsync_free is not None:
            print(f"host overhead per card with the database on tmpfs (no fsync): "
                  f"{host_overhead(fsync_free, args.direct)[0] * 1000:.2f} ms")
        bare_s = bare(pcscd, args.bare, bench.context("BARE", "DIRECT"))
        one = station(bench, pcscd, 1, args.cards, "ONE")
        four = station(bench, pcscd, 4, args.cards, "FOUR")
    report(floor, host_s, apdus, bare_s, one, four)


def report(floor: float, host_s: float, apdus: float, bare_s: float, one: Run, four: Run) -> None:
    one_rate, four_rate = one.issued / one.seconds * 60, four.issued / four.seconds * 60
    journal_s = one.per_card()
    print(f"loopback APDU floor (pyscard → pcscd → vpcd, median): {floor * 1e6:.0f} µs")
    print(f"APDUs per card (issue + verify): {apdus:.1f}")
    print(f"host overhead per card (journal, 5 commits, signing, driver, checks; chip time excluded): "
          f"{host_s * 1000:.2f} ms (target ≤ 10 ms)")
    print(f"bare personalisation (driver only), 1 reader: {bare_s * 1000:.1f} ms/card on the reader")
    print(f"journaled issue, 1 reader: {journal_s * 1000:.1f} ms/card on the reader; journal overhead "
          f"{(journal_s - bare_s) * 1000:+.1f} ms/card")
    print(f"station, 1 reader: {one.issued} cards in {one.seconds:.1f} s = {one_rate:.0f} cards/min "
          f"(wall clock incl. pcscd noticing each card swap; {60 / one.per_card():.0f} cards/min "
          "on the reader)")
    print(f"station, 4 readers: {four.issued} cards in {four.seconds:.1f} s = {four_rate:.0f} cards/min "
          f"({four.per_card() * 1000:.1f} ms/card on each reader)")
    print(f"speed-up 1 → 4 readers (wall clock): {four_rate / one_rate:.2f}× (target ≥ 3×); "
          f"time on each reader {one.per_card() * 1000:.1f} → {four.per_card() * 1000:.1f} ms/card "
          "(host work of 4 workers shares the GIL)")
    for apdu_ms in REAL_APDU_MS:
        single, quad = projected(apdus, host_s, 1, apdu_ms), projected(apdus, host_s, 4, apdu_ms)
        print(f"projected {PROJECTED_CARDS:,} cards at {apdu_ms:.0f} ms/APDU (+ card swaps not counted): "
              f"1 reader {single}, 4 readers {quad} (speed-up {single / quad:.2f}×)")


if __name__ == "__main__":
    main()
