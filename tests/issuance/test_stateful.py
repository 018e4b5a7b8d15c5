"""A hypothesis state machine over the issuance desk: reserve, write, tear, crash, recover, revoke
and replace in any order, with the batch invariants checked after every step."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cardsvc.emulator.base import VirtualCard
from cardsvc.issuance.lifecycle import LifecycleService
from cardsvc.issuance.recovery import Recovery
from cardsvc.issuance.workflow import FaultPoint, OutcomeKind
from cardsvc.registry import card_repo
from cardsvc.registry.cards import CardStatus, JournalState
from tests.issuance.invariants import assert_invariants
from tests.issuance.support import (
    Desk,
    QueueSource,
    blank_cards,
    clock,
    key_store,
    migrated_engine,
    profile,
    seed_members,
)
from tests.support.cards import DirectConnection

APDUS = 60  # more than one personalisation takes: a tear index past the end means no tear


class Crash(BaseException):
    pass


class IssuanceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="cardsvc-stateful-"))
        engine = migrated_engine(f"sqlite:///{self.dir / 'db.sqlite3'}")
        seed_members(engine, 12)
        ntag = profile()
        self.desk = Desk(engine, key_store(self.dir / "keys", ntag), ntag)
        self.desk.create_batch()
        self.lifecycle = LifecycleService(self.desk.sessions, actor="clerk", clock=clock)
        self.chips: dict[bytes, VirtualCard] = {}
        self.loose: list[VirtualCard] = []  # torn or crashed chips waiting to be presented again
        self.voided: set[str] = set()
        self.uid = 0
        self.held = None

    def teardown(self) -> None:
        try:
            assert_invariants(self.desk, self.chips)  # full check, chips read back, at the end
        finally:
            self.desk.engine.dispose()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _chip(self) -> VirtualCard:
        self.uid += 1
        chip = blank_cards("ntag424", 1, first_uid=self.uid)[0]
        self.chips[chip.uid] = chip
        return chip

    def _reservation(self):  # type: ignore[no-untyped-def]
        if self.held is None:
            self.held = self.desk.journal().reserve(self.desk.batch)
        return self.held

    def _present(self, chip: VirtualCard, tear_at: int | None = None, hook=None) -> None:  # type: ignore[no-untyped-def]
        reservation = self._reservation()
        if reservation is None:
            return
        workflow = self.desk.workflow(hook=hook) if hook else self.desk.workflow()
        try:
            outcome = workflow.process(DirectConnection(chip, tear_at=tear_at), reservation)
        except Crash:
            self.held = None  # the process died: whatever it held is for recovery
            self.loose.append(chip)
            return
        if outcome.used_reservation:
            self.held = None
        if outcome.kind is OutcomeKind.failed:
            self.loose.append(chip)

    @rule()
    def reserve(self) -> None:
        self._reservation()

    @rule()
    def write(self) -> None:
        self._present(self._chip())

    @rule(tear_at=st.integers(min_value=0, max_value=APDUS))
    def tear(self, tear_at: int) -> None:
        self._present(self._chip(), tear_at=tear_at)

    @rule(point=st.sampled_from([p for p in FaultPoint if p is not FaultPoint.reserved]))
    def crash(self, point: FaultPoint) -> None:
        def hook(at: FaultPoint, _number: str) -> None:
            if at is point:
                raise Crash(point.value)

        self._present(self._chip(), hook=hook)

    @precondition(lambda self: self.loose)
    @rule()
    def present_again(self) -> None:
        self._present(self.loose.pop(0))

    @rule(present=st.booleans())
    def recover(self, present: bool) -> None:
        self.held = None  # recovery runs with the stations stopped
        chips = list(self.loose) if present else []
        report = Recovery(self.desk.workflow("recovery"), self.desk.sessions).run(
            [QueueSource("R", chips)] if chips else [], lambda _e: None)
        self.voided |= set(report.voided)
        if present:
            self.loose.clear()
            assert report.unresolved == ()

    def _issued(self, *statuses: CardStatus) -> list[str]:
        with self.desk.sessions() as session:
            cards = card_repo.cards_in_states(session, batch_id=self.desk.batch.id or 0,
                                              states=[JournalState.issued])
        return [c.card_number for c in cards if c.status in statuses]

    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        issued = self._issued(CardStatus.active, CardStatus.suspended, CardStatus.lost)
        if issued:
            self.lifecycle.revoke(data.draw(st.sampled_from(issued)))

    @rule(data=st.data())
    def replace(self, data: st.DataObject) -> None:
        issued = self._issued(CardStatus.active, CardStatus.lost)
        if issued:
            self.lifecycle.replace(data.draw(st.sampled_from(issued)))

    @invariant()
    def batch_invariants(self) -> None:
        assert_invariants(self.desk)  # numbers, live cards, chips, credentials, members
        with self.desk.sessions() as session:
            for number in self.voided:
                assert card_repo.get_card(session, card_number=number).state == JournalState.voided


IssuanceMachine.TestCase.settings = settings(
    max_examples=20, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestIssuanceMachine = IssuanceMachine.TestCase
