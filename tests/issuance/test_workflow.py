"""One card at a time through the journal with emulated NTAG 424 DNA cards (DirectConnection)."""

from __future__ import annotations

from sqlmodel import select

from cardsvc.credential.claims import CredentialClaims
from cardsvc.credential.token import parse_credential
from cardsvc.issuance.numbering import luhn_valid
from cardsvc.issuance.workflow import OutcomeKind
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Card, CardEvent, CardStatus, JournalState
from tests.issuance.support import Desk, blank_cards
from tests.support.cards import DirectConnection


def test_one_card_walks_the_journal(desk: Desk) -> None:
    desk.create_batch()
    workflow = desk.workflow()
    reservation = workflow.journal.reserve(desk.batch)
    assert reservation is not None and reservation.state == JournalState.reserved
    (card,) = blank_cards("ntag424", 1)
    outcome = workflow.process(DirectConnection(card), reservation)
    assert outcome.kind is OutcomeKind.issued, outcome.reason
    assert outcome.used_reservation and luhn_valid(outcome.card_number or "")
    with desk.sessions() as session:
        row = card_repo.get_card(session, card_number=outcome.card_number or "")
        events = session.exec(select(CardEvent).where(CardEvent.card_id == row.id)).all()
    assert (row.state, row.status, row.live) == (JournalState.issued, CardStatus.active, True)
    assert [e.to_state for e in events] == ["reserved", "writing", "written", "verified", "issued"]
    assert row.uid_hash is not None and card.uid not in row.uid_hash and len(row.uid_hash) == 32
    claims: CredentialClaims = parse_credential(row.credential or b"").claims
    assert claims.card_number == row.card_number and claims.key_version == desk.batch.key_version


def test_same_card_presented_twice_is_recognised(desk: Desk) -> None:
    desk.create_batch()
    workflow = desk.workflow()
    (card,) = blank_cards("ntag424", 1)
    first = workflow.process(DirectConnection(card), workflow.journal.reserve(desk.batch))  # type: ignore[arg-type]
    second_reservation = workflow.journal.reserve(desk.batch)
    assert second_reservation is not None
    again = workflow.process(DirectConnection(card), second_reservation)
    assert again.kind is OutcomeKind.already_issued and again.card_number == first.card_number
    assert not again.used_reservation
    with desk.sessions() as session:
        assert session.exec(select(Card).where(Card.state == JournalState.issued)).all().__len__() == 1


def test_presigned_credential_is_used_while_fresh_and_signed_anew_when_stale(desk: Desk) -> None:
    import datetime as dt

    from cardsvc.issuance.workflow import PRESIGN_MAX_AGE, CardWorkflow
    from tests.issuance.support import NOW

    desk.create_batch()
    now = [NOW]
    workflow = CardWorkflow(desk.ctx, desk.journal(), clock=lambda: now[0])
    cards = blank_cards("ntag424", 3)
    taken = []
    for card, wait in zip(cards, (dt.timedelta(seconds=50), PRESIGN_MAX_AGE + dt.timedelta(seconds=1),
                                  dt.timedelta(0)), strict=True):
        reservation = workflow.journal.reserve(desk.batch)
        assert reservation is not None
        presigned = workflow.presign(reservation)
        assert presigned is not None and presigned.card_number == reservation.card_number
        signed_at = now[0]
        now[0] += wait  # the clerk takes this long to present the card
        other = None if wait else workflow.presign(workflow.journal.reserve(desk.batch))  # type: ignore[arg-type]
        outcome = workflow.process(DirectConnection(card), reservation, other or presigned)
        assert outcome.kind is OutcomeKind.issued, outcome.reason
        with desk.sessions() as session:
            row = card_repo.get_card(session, card_number=reservation.card_number)
        claims = parse_credential(row.credential or b"").claims
        taken.append((row.issued_at == claims.issued_at, claims.issued_at == signed_at,
                      claims.card_number == reservation.card_number))
    # fresh: the pre-signed credential (iat = signing time); stale: signed anew at binding (iat =
    # binding time); another reservation's credential: never used (signed anew for this number)
    assert taken == [(True, True, True), (True, False, True), (True, True, True)]
