"""Two clerks change one card at the same moment, on SQLite and on a real PostgreSQL server.

Regression for the lost update found in review: ``revoke`` ∥ ``suspend`` ended ``suspended`` (the
revoke silently undone) and a later ``resume`` made the revoked card verify again; after ``replace``
the race made ``resume`` raise a raw ``IntegrityError``. For every pair of lifecycle actions and every
status both may start from, both threads read and check the card, then meet at a barrier (the
service's injected clock, called between the check and the write) and write together: exactly one
change wins, the other gets ``Conflict``, and the history and the revocation list tell the winner's
story.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from cardsvc.errors import Conflict, IssuanceError
from cardsvc.issuance.journal import DatabaseUnavailable
from cardsvc.issuance.lifecycle import _FROM, _TO, LifecycleChange, LifecycleService
from cardsvc.issuance.numbering import NumberScheme
from cardsvc.profiles import Profile
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Card, CardStatus
from cardsvc.registry.db import make_engine
from cardsvc.registry.models import table_of
from tests.issuance.support import NOW, Desk, key_store, migrated_engine, seed_members
from tests.issuance.test_lifecycle import issue
from tests.support.postgres import PostgresServer

ACTIONS = ("suspend", "resume", "lost", "revoke", "replace", "renew")
START_ORDER = (CardStatus.active, CardStatus.suspended, CardStatus.lost)
RACES = [(first, second, start) for first, second in itertools.combinations_with_replacement(ACTIONS, 2)
         for start in START_ORDER if start in _FROM[first] & _FROM[second]]
SINGLE = ("stale", "integrity")
PREPARE = {CardStatus.active: (), CardStatus.suspended: ("suspend",), CardStatus.lost: ("lost",)}


def _race_id(race: tuple[str, str, CardStatus]) -> str:
    return f"{race[0]}-vs-{race[1]}-from-{race[2].value}"


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()  # raises with the reason if it cannot: never a skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def race_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('races') / 'lifecycle.sqlite3'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.url(server.create_database())
    engine = migrated_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def cards(race_engine: Engine, tmp_path_factory: pytest.TempPathFactory,
          ntag_profile: Profile) -> tuple[Desk, dict[str, str]]:
    """One issued card per race (each its own member), so the races never share a row."""
    names = [*map(_race_id, RACES), *SINGLE]
    seed_members(race_engine, len(names))
    desk = Desk(race_engine, key_store(tmp_path_factory.mktemp("keys"), ntag_profile), ntag_profile)
    desk.create_batch()
    return desk, dict(zip(names, issue(desk, len(names)), strict=True))


def barrier_clock(barrier: threading.Barrier) -> Callable[[], dt.datetime]:
    """The first call waits for the other clerk (both have read and checked the card by then)."""
    waited = threading.Event()

    def now() -> dt.datetime:
        if not waited.is_set():
            waited.set()
            barrier.wait(timeout=20)
        return NOW

    return now


def run_together(desk: Desk, number: str, actions: tuple[str, str]) -> list[LifecycleChange | Exception]:
    barrier = threading.Barrier(2)
    results: list[LifecycleChange | Exception] = [RuntimeError("thread did not finish")] * 2

    def clerk(slot: int) -> None:
        service = LifecycleService(desk.sessions, actor=f"clerk-{slot}", clock=barrier_clock(barrier))
        try:
            results[slot] = getattr(service, actions[slot])(number, reason=f"race {slot}")
        except Exception as exc:
            results[slot] = exc

    threads = [threading.Thread(target=clerk, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _final_status(action: str) -> CardStatus:
    return _TO.get(action, CardStatus.revoked)  # replace/renew revoke the old card


@pytest.mark.parametrize("race", RACES, ids=_race_id)
def test_concurrent_lifecycle_changes_one_wins_the_other_conflicts(
        cards: tuple[Desk, dict[str, str]], race: tuple[str, str, CardStatus]) -> None:
    desk, numbers = cards
    first, second, start = race
    number = numbers[_race_id(race)]
    clerk = LifecycleService(desk.sessions, actor="setup", clock=lambda: NOW)
    for action in PREPARE[start]:
        getattr(clerk, action)(number)

    results = run_together(desk, number, (first, second))

    won = [r for r in results if isinstance(r, LifecycleChange)]
    lost = [r for r in results if not isinstance(r, LifecycleChange)]
    assert len(won) == 1, results
    assert len(lost) == 1 and isinstance(lost[0], Conflict), results
    assert lost[0].reason == "status_changed"
    winner = won[0]
    assert winner.from_status == start.value
    view = clerk.show(number)
    final = _final_status(winner.action)
    assert (view.status, view.live) == (final.value, final is not CardStatus.revoked)
    race_events = [e for e in view.events if e.detail.startswith("race")]
    assert [(e.action, e.from_state, e.to_state) for e in race_events] == [
        (winner.action, start.value, final.value)]
    if final is CardStatus.revoked:
        assert number in clerk.revoked_card_numbers()
        with pytest.raises(IssuanceError, match="revoked: cannot resume"):
            clerk.resume(number)  # the revoked card never comes back


def test_revoke_then_stale_suspend_is_refused(cards: tuple[Desk, dict[str, str]]) -> None:
    """The reviewer's interleaving without threads: a suspend that read the card before the revoke
    committed must not write over it."""
    desk, numbers = cards
    number = numbers["stale"]
    clerk = LifecycleService(desk.sessions, actor="setup", clock=lambda: NOW)
    with desk.sessions() as session:
        stale = card_repo.get_card(session, card_number=number)
    clerk.revoke(number, reason="left the union")
    with desk.sessions() as session, session.begin(), pytest.raises(Conflict, match="no longer active"):
        card_repo.set_status(session, card=stale, expected=CardStatus.active, status=CardStatus.suspended,
                             live=True, actor="late clerk", action="suspend", now=NOW)
    view = clerk.show(number)
    assert (view.status, view.live) == (CardStatus.revoked, False)
    assert [e.action for e in view.events][-1] == "revoke"


def test_constraint_violation_is_a_conflict_not_an_integrity_error(
        cards: tuple[Desk, dict[str, str]]) -> None:
    """A row edited by hand into an impossible shape (suspended but not live, while the member holds a
    new live card): resume would give the member two live cards; the database refuses and the
    clerk gets ``Conflict``, with the change rolled back."""
    desk, numbers = cards
    number = numbers["integrity"]
    clerk = LifecycleService(desk.sessions, actor="setup", clock=lambda: NOW)
    clerk.suspend(number)
    new_number = clerk.replace(number).new_card_number
    card = table_of(Card)
    with desk.engine.begin() as conn:
        conn.execute(update(card).where(card.c.card_number == number).values(status="suspended", live=False))
    with pytest.raises(Conflict) as caught:
        clerk.resume(number)
    assert caught.value.reason == "concurrent_change"
    assert clerk.show(number).status == CardStatus.suspended.value
    assert new_number and clerk.show(new_number).live


def test_database_that_cannot_be_opened_is_database_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}")  # a directory: SQLite cannot open it
    try:
        clerk = LifecycleService(lambda: Session(engine), actor="clerk", clock=lambda: NOW)
        for call in (clerk.suspend, clerk.show):
            with pytest.raises(DatabaseUnavailable, match="OperationalError"):
                call(NumberScheme("31", 2025).format(1))
    finally:
        engine.dispose()
