"""The same journal with FMCOS 2.0 CPU cards: issue, and tear after every APDU mid-batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cardsvc.issuance.workflow import OutcomeKind
from cardsvc.profiles import Profile
from tests.issuance.invariants import assert_invariants
from tests.issuance.support import Desk, QueueSource, blank_cards, key_store, profile, seed_members
from tests.issuance.test_faults import run_station
from tests.support.cards import DirectConnection


@pytest.fixture(scope="module")
def fmcos_profile() -> Profile:
    return profile("fmcos-cpu")


@pytest.fixture
def fm_desk(engine: Engine, tmp_path: Path, fmcos_profile: Profile) -> Desk:
    seed_members(engine, 5)
    return Desk(engine, key_store(tmp_path / "keys", fmcos_profile), fmcos_profile)


def test_fmcos_card_is_issued_and_proves_its_keys(fm_desk: Desk) -> None:
    fm_desk.create_batch()
    workflow = fm_desk.workflow()
    (card,) = blank_cards("fmcos", 1)
    conn = DirectConnection(card)
    outcome = workflow.process(conn, workflow.journal.reserve(fm_desk.batch))  # type: ignore[arg-type]
    assert outcome.kind is OutcomeKind.issued, outcome.reason
    assert assert_invariants(fm_desk, {card.uid: card}) == {"issued": 1}
    again = workflow.process(DirectConnection(card), workflow.journal.reserve(fm_desk.batch))  # type: ignore[arg-type]
    assert again.kind is OutcomeKind.already_issued


def test_fmcos_tear_after_every_apdu_mid_batch(fm_desk: Desk) -> None:
    fm_desk.create_batch()
    probe = fm_desk.workflow("probe")
    (spare,) = blank_cards("fmcos", 1, first_uid=999)
    conn = DirectConnection(spare)
    assert probe.process(conn, probe.journal.reserve(fm_desk.batch)).kind is OutcomeKind.issued  # type: ignore[arg-type]
    total = len(conn.sent)
    seed_members(fm_desk.engine, total + 2, start=100)
    fm_desk.create_batch("TEAR")
    cards = blank_cards("fmcos", total)
    queue = [c for c in cards for _ in range(2)]
    run_station(fm_desk, [QueueSource("R0", queue, tear_at=lambda i: i // 2 if i % 2 == 0 else None)])
    states = assert_invariants(fm_desk, {c.uid: c for c in cards})
    assert states["issued"] + states.get("spoiled", 0) == total + 1
    assert states["issued"] >= total - 2, states
