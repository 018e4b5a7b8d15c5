"""Lifecycle after issue: every change is one transaction with history, reaches the revocation
list and the audit sink; replace revokes and reserves in the same transaction."""

from __future__ import annotations

import pytest

from cardsvc.errors import InvalidRecord, IssuanceError, NotFound
from cardsvc.issuance.lifecycle import LifecycleChange, LifecycleService
from cardsvc.issuance.numbering import NumberScheme
from cardsvc.issuance.workflow import OutcomeKind
from cardsvc.registry import card_repo
from cardsvc.registry.cards import CardStatus, JournalState
from tests.issuance.invariants import assert_invariants, offline_verifier
from tests.issuance.support import Desk, blank_cards, clock
from tests.support.cards import DirectConnection


def issue(desk: Desk, count: int) -> list[str]:
    workflow = desk.workflow()
    numbers = []
    for card in blank_cards("ntag424", count, first_uid=len(numbers) + 500):
        outcome = workflow.process(DirectConnection(card), workflow.journal.reserve(desk.batch))  # type: ignore[arg-type]
        assert outcome.kind is OutcomeKind.issued
        numbers.append(outcome.card_number or "")
    return numbers


@pytest.fixture
def service(desk: Desk) -> tuple[LifecycleService, list[LifecycleChange]]:
    desk.create_batch()
    audit: list[LifecycleChange] = []
    return LifecycleService(desk.sessions, actor="clerk-7", clock=clock,
                            audit=lambda _session, change: audit.append(change)), audit


def test_suspend_resume_lost_revoke_reach_the_revocation_list(desk: Desk, service) -> None:  # type: ignore[no-untyped-def]
    lifecycle, audit = service
    first, second = issue(desk, 2)
    assert lifecycle.revoked_card_numbers() == []
    lifecycle.suspend(first, reason="dues unpaid")
    lifecycle.lost(second)
    assert lifecycle.revoked_card_numbers() == sorted([first, second])
    verifier = offline_verifier(desk, lifecycle.revoked_card_numbers())
    with desk.sessions() as session:
        credential = card_repo.get_card(session, card_number=first).credential
    assert verifier.verify(credential or b"").reason == "revoked"
    lifecycle.resume(first)
    lifecycle.resume(second, reason="found")
    assert lifecycle.revoked_card_numbers() == []
    lifecycle.revoke(first, reason="left the union")
    assert lifecycle.revoked_card_numbers() == [first]
    view = lifecycle.show(first)
    assert (view.status, view.live) == (CardStatus.revoked, False)
    assert [e.action for e in view.events][-3:] == ["suspend", "resume", "revoke"]
    assert [c.action for c in audit] == ["suspend", "lost", "resume", "resume", "revoke"]
    assert all(c.actor == "clerk-7" and "张" not in repr(c) for c in audit)


def test_refused_transitions(desk: Desk, service) -> None:  # type: ignore[no-untyped-def]
    lifecycle, audit = service
    (number,) = issue(desk, 1)
    with pytest.raises(IssuanceError, match="cannot resume"):
        lifecycle.resume(number)
    lifecycle.revoke(number)
    for action in (lifecycle.suspend, lifecycle.lost, lifecycle.revoke, lifecycle.replace):
        with pytest.raises(IssuanceError, match="revoked"):
            action(number)
    with pytest.raises(InvalidRecord):
        lifecycle.suspend("12345")  # bad check digit: a typo, not a lookup
    with pytest.raises(NotFound):
        lifecycle.suspend(NumberScheme("31", 2025).format(9_999_999))
    assert [c.action for c in audit] == ["revoke"]


def test_replace_revokes_and_reserves_in_one_transaction_then_issues(desk: Desk, service) -> None:  # type: ignore[no-untyped-def]
    lifecycle, _ = service
    (old,) = issue(desk, 1)
    change = lifecycle.replace(old, reason="card damaged")
    assert change.new_card_number and change.new_card_number != old
    with desk.sessions() as session:
        old_row = card_repo.get_card(session, card_number=old)
        new_row = card_repo.get_card(session, card_number=change.new_card_number)
    assert (old_row.status, old_row.live) == (CardStatus.revoked, False)
    assert (new_row.state, new_row.live, new_row.station) == (JournalState.reserved, True, None)
    assert (new_row.member_id, new_row.replaces_id) == (old_row.member_id, old_row.id)
    workflow = desk.workflow()
    claimed = workflow.journal.reserve(desk.batch)
    assert claimed is not None and claimed.card_number == change.new_card_number
    (chip,) = blank_cards("ntag424", 1, first_uid=900)
    assert workflow.process(DirectConnection(chip), claimed).kind is OutcomeKind.issued
    assert lifecycle.revoked_card_numbers() == [old]
    assert assert_invariants(desk, {chip.uid: chip})["issued"] == 2
    renewed = lifecycle.renew(change.new_card_number)
    assert renewed.new_card_number
    assert lifecycle.revoked_card_numbers() == sorted([old, change.new_card_number])


def test_revoking_a_reservation_voids_it(desk: Desk, service) -> None:  # type: ignore[no-untyped-def]
    lifecycle, audit = service
    reservation = desk.journal().reserve(desk.batch)
    assert reservation is not None
    change = lifecycle.revoke(reservation.card_number, reason="member left")
    assert (change.from_status, change.to_status) == ("reserved", "voided")
    with desk.sessions() as session:
        row = card_repo.get_card(session, card_number=reservation.card_number)
    assert (row.state, row.live) == (JournalState.voided, False)
    assert len(audit) == 1
