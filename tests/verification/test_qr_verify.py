"""QR verification against the database: checklist outcomes, live status, audit rows, bad input."""

from __future__ import annotations

import pytest

from cardsvc.credential import CredentialClaims, issue_credential, to_qr_text
from cardsvc.errors import MalformedCredential, NotFound
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.cards import CardStatus
from cardsvc.registry.models import MemberStatus
from cardsvc.verification.audit import verify_chain
from cardsvc.verification.outcome import Verdict
from cardsvc.verification.store import read_audit
from tests.verification.world import ISSUER, NOW, World


def _verify(world: World, qr: str):  # type: ignore[no-untyped-def]
    return world.db.transact(lambda s: world.svc.verify_qr(s, actor="aaaaaaaaaaaa", qr_text=qr))


def _audit(world: World) -> list[tuple[str, str, str, str]]:
    with world.session() as s:
        rows = read_audit(s)
    verify_chain(rows)
    return [(r.event.event_type, r.event.subject, r.event.outcome.value, r.event.reason) for r in rows]


def test_ok_and_audited(world: World) -> None:
    card = world.issue_card()
    result = _verify(world, card.qr)
    assert (result.verdict, result.reason, result.card_number) == (Verdict.OK, None, card.card_number)
    assert result.member is not None and result.member.name == "张三丰"
    assert _audit(world) == [("verify.qr", card.card_number, "ok", "verified")]


@pytest.mark.parametrize(("status", "reason"), [(CardStatus.revoked, "card_revoked"),
                                                (CardStatus.lost, "card_lost"),
                                                (CardStatus.suspended, "card_suspended")])
def test_card_status_gives_nok(world: World, status: CardStatus, reason: str) -> None:
    card = world.issue_card()
    world.set_card_status(card, status)
    result = _verify(world, card.qr)
    assert (result.verdict, result.reason) == (Verdict.NOK, reason)
    assert _audit(world) == [("verify.qr", card.card_number, "nok", reason)]


def test_member_status(world: World) -> None:
    suspended = world.issue_card(world.add_member("李四", status=MemberStatus.suspended))
    left = world.issue_card(world.add_member("王五", id_number="110105194912310037",
                                             status=MemberStatus.left))
    assert _verify(world, suspended.qr).verdict is Verdict.CHECK
    result = _verify(world, left.qr)
    assert (result.verdict, result.reason) == (Verdict.NOK, "member_inactive")


def test_forged_signature_is_nok_without_card_number(world: World) -> None:
    card = world.issue_card()
    forged = bytearray(card.credential)
    forged[-1] ^= 1
    result = _verify(world, to_qr_text(bytes(forged)))
    assert (result.verdict, result.reason, result.card_number) == (Verdict.NOK, "signature", None)
    assert _audit(world) == [("verify.qr", "", "nok", "signature")]


def test_expired_credential(world: World) -> None:
    card = world.issue_card()
    world.clock.advance(days=400)
    assert _verify(world, card.qr).reason == "expired"


def test_superseded_credential(world: World) -> None:
    card = world.issue_card()
    claims = CredentialClaims(issuer=ISSUER, card_number=card.card_number, issued_at=NOW,
                              expires_at=NOW.replace(year=2027), profile="ntag", key_version=1)
    other = issue_credential(world.signer, claims)
    result = _verify(world, to_qr_text(other))
    assert (result.verdict, result.reason) == (Verdict.NOK, "credential_superseded")


def test_unknown_card_is_404_and_not_recorded(world: World) -> None:
    claims = CredentialClaims(issuer=ISSUER, card_number="999900000001", issued_at=NOW,
                              expires_at=NOW.replace(year=2027), profile="ntag", key_version=1)
    with pytest.raises(NotFound) as caught:
        _verify(world, to_qr_text(issue_credential(world.signer, claims)))
    assert caught.value.reason == "unknown_card"
    assert _audit(world) == []


@pytest.mark.parametrize("text", ["UC1:", "UC1:%%%%", "XX1:ABC", "UC1:" + "A" * 3000])
def test_malformed_text_raises_and_records_nothing(world: World, text: str) -> None:
    with pytest.raises(MalformedCredential):
        _verify(world, text)
    with world.session() as s:
        assert repo.audit_count(s) == 0
