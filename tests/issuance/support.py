"""Helpers for issuance tests: a migrated database with members, a key store, emulated card sources."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, insert

from cardsvc.credential.cose import Algorithm
from cardsvc.credential.filestore import FileKeyStore
from cardsvc.emulator.base import VirtualCard, card_class
from cardsvc.issuance.batches import BatchService, BatchSpec, Selection, batch_context
from cardsvc.issuance.journal import Journal
from cardsvc.issuance.keys import ensure_master_keys, ensure_uid_index
from cardsvc.issuance.workflow import BatchContext, CardWorkflow, Hook, _no_hook
from cardsvc.profiles import Profile, load_profile
from cardsvc.registry.cards import Batch
from cardsvc.registry.db import make_engine, session_factory, upgrade_to_head
from cardsvc.registry.models import Member, Organisation
from cardsvc.transport.base import CardConnection
from tests.support.cards import DirectConnection

ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = ROOT / "firmware_profiles"
NOW = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
ISSUER = "XCGH"
BASE_URL = "https://verify.example.cn"
FAST_SCRYPT = 2**10


def clock() -> dt.datetime:
    return NOW


def profile(name: str = "ntag424-dna") -> Profile:
    return load_profile(PROFILES_DIR / f"{name}.toml")


def migrated_engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade_to_head(engine)
    return engine


def seed_members(engine: Engine, count: int, *, start: int = 0) -> list[int]:
    """Organisations D01 > T01 > G1 and ``count`` active members in G1 (names only: no PII needed)."""
    with engine.begin() as conn:
        if start == 0:
            conn.execute(insert(Organisation), [
                {"id": 1, "code": "D01", "name": "某区总工会", "kind": "district_federation",
                 "parent_id": None},
                {"id": 2, "code": "T01", "name": "城关镇总工会", "kind": "town_federation", "parent_id": 1},
                {"id": 3, "code": "G1", "name": "城关镇第一机械厂工会", "kind": "enterprise_union",
                 "parent_id": 2},
                {"id": 4, "code": "G2", "name": "另一工会", "kind": "enterprise_union", "parent_id": 1}])
        rows = [{"id": start + i + 1, "public_id": f"{start + i + 1:032x}",
                 "name": f"张{'三四五六'[i % 4]}丰",
                 "status": "active", "org_id": 3, "created_at": NOW, "updated_at": NOW}
                for i in range(count)]
        conn.execute(insert(Member), rows)
    return [r["id"] for r in rows]  # type: ignore[misc]


def key_store(path: Path, *profiles: Profile) -> FileKeyStore:
    store = FileKeyStore(path, "issuance tests", scrypt_n=FAST_SCRYPT)
    store.create_issuer_key(Algorithm.eddsa, not_before=NOW - dt.timedelta(days=1))
    store.create_bundle_key(Algorithm.eddsa, not_before=NOW - dt.timedelta(days=1))
    for p in profiles:
        ensure_master_keys(store, p)
    ensure_uid_index(store)
    return store


@dataclass
class Desk:
    """One issuing desk: database, key store, a batch and its context."""

    engine: Engine
    store: FileKeyStore
    profile: Profile
    batch: Batch = field(init=False)
    ctx: BatchContext = field(init=False)

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return session_factory(self.engine)

    def create_batch(self, label: str = "B1", *, selection: Selection | None = None, prefix: str = "31",
                     valid_days: int = 365 * 3) -> Batch:
        spec = BatchSpec(label=label, profile=self.profile, prefix=prefix, year=2025, valid_days=valid_days,
                         selection=selection or Selection(org_code="D01"))
        BatchService(self.sessions, clock=clock).create(spec, self.store, issuer=ISSUER)
        self.use_batch(label)
        return self.batch

    def use_batch(self, label: str) -> None:
        self.batch = BatchService(self.sessions, clock=clock).get(label)
        self.ctx = batch_context(self.batch, {self.profile.name: self.profile}, self.store, issuer=ISSUER,
                                 public_base_url=BASE_URL, now=NOW)

    def journal(self, actor: str = "station-a") -> Journal:
        return Journal(self.sessions, actor=actor, clock=clock)

    def workflow(self, actor: str = "station-a", hook: Hook = _no_hook) -> CardWorkflow:
        return CardWorkflow(self.ctx, self.journal(actor), clock=clock, hook=hook)


def blank_cards(family: str, count: int, *, first_uid: int = 1) -> list[VirtualCard]:
    factory = card_class(family)
    size = 7 if family == "ntag424" else 4
    prefix = b"\x04" if size == 7 else b""
    return [factory.blank(uid=prefix + (first_uid + i).to_bytes(size - len(prefix), "big"))
            for i in range(count)]


class QueueSource:
    """A CardSource over emulated cards (in-process DirectConnection), optionally tearing some."""

    def __init__(self, name: str, cards: Iterable[VirtualCard], *, tear_at: Callable[[int], int | None]
                 = lambda _i: None) -> None:
        self._name = name
        self._cards = list(cards)
        self._index = itertools.count()
        self._tear_at = tear_at
        self._lock = threading.Lock()
        self.connections: list[DirectConnection] = []

    @property
    def name(self) -> str:
        return self._name

    def next_card(self, stop: threading.Event, timeout_s: float = 0.0) -> CardConnection | None:
        del timeout_s  # a queue never waits: empty means no card will come
        with self._lock:
            i = next(self._index)
        if stop.is_set() or i >= len(self._cards):
            return None
        conn = DirectConnection(self._cards[i], tear_at=self._tear_at(i), reader=self._name)
        self.connections.append(conn)
        return conn

    def release(self, conn: CardConnection) -> None:
        conn.close()


def apdu_count(sources: Sequence[QueueSource]) -> int:
    return sum(len(c.sent) for s in sources for c in s.connections)
