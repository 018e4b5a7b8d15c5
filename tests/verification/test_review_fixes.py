"""Review findings in the verification workflows (SQLite and PostgreSQL): card expiry on every
method, check-in order and offline time bounds, challenge purge."""

from __future__ import annotations

import dataclasses
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import Session, select

from cardsvc.config import Settings
from cardsvc.errors import Conflict, PermissionDenied
from cardsvc.registry.cards import Card, CardStatus
from cardsvc.registry.verification_models import Challenge
from cardsvc.verification.outcome import Verdict, Verification
from cardsvc.verification.recuperation import (
    OFFLINE_CLOCK_SKEW,
    CheckinRequest,
    CheckinResult,
    check_in,
    check_in_committed,
    sync,
)
from cardsvc.verification.roles import Role
from cardsvc.verification.service import (
    CHALLENGE_PURGE_AFTER,
    CHALLENGE_PURGE_BATCH,
    CHALLENGE_TTL,
    CardAnswer,
)
from cardsvc.verification.tokens import ClientRecord
from tests.verification.world import FMCOS, NOW, NTAG, PROGRAMME, IssuedCard, World

EXPIRED_DAYS = 400  # cards expire 365 days after issue


def _sun(world: World, url: str) -> Verification:
    return world.svc.db.transact(lambda s: world.svc.verify_sun(s, actor="anonymous", url=url))


def _reader_tap(world: World, answer: CardAnswer) -> Verification:
    return world.svc.db.transact(lambda s: world.svc.verify_card(s, actor="reader", answer=answer))


def _challenge(world: World) -> bytes:
    def work(session: Session) -> bytes:
        return world.svc.create_challenge(session, client_id="reader").nonce

    return world.svc.db.transact(work)


def test_phone_tap_of_an_expired_card_is_nok_expired(world: World) -> None:
    card = world.issue_card(profile=NTAG)
    assert _sun(world, world.tap_url(card)).verdict is Verdict.OK
    world.clock.advance(days=EXPIRED_DAYS)
    result = _sun(world, world.tap_url(card))
    assert (result.verdict, result.reason) == (Verdict.NOK, "expired")


def test_hot_path_halves_of_a_phone_tap_see_the_expiry(world: World) -> None:
    card = world.issue_card(profile=NTAG)
    world.clock.advance(days=EXPIRED_DAYS)
    url = world.tap_url(card)
    pending = world.svc.db.read(lambda s: world.svc.check_sun(s, actor="anonymous", url=url))
    assert (pending.answer.verdict, pending.answer.reason) == (Verdict.NOK, "expired")


def test_qr_of_an_expired_card_is_nok_expired(world: World) -> None:
    card = world.issue_card(profile=NTAG)
    world.clock.advance(days=EXPIRED_DAYS)
    result = world.svc.db.transact(lambda s: world.svc.verify_qr(s, actor="a", qr_text=card.qr))
    assert (result.verdict, result.reason) == (Verdict.NOK, "expired")


def test_reader_tap_of_an_expired_card_is_nok_expired(world: World) -> None:
    fmcos, ntag = world.issue_card(profile=FMCOS), world.issue_card(profile=NTAG)
    world.clock.advance(days=EXPIRED_DAYS)
    nonce = _challenge(world)
    by_auth = _reader_tap(world, CardAnswer(nonce, fmcos.uid, "internal_auth",
                                            world.internal_auth(fmcos, nonce)))
    nonce = _challenge(world)
    by_sun = _reader_tap(world, CardAnswer(nonce, ntag.uid, "sun", world.tap_url(ntag).encode()))
    assert (by_auth.verdict, by_auth.reason) == (Verdict.NOK, "expired")
    assert (by_sun.verdict, by_sun.reason) == (Verdict.NOK, "expired")


# --- check-in: the Idempotency-Key first, offline time bounds --------------------------------------


def _partner() -> ClientRecord:
    return ClientRecord(client_id="b0b0b0b0b0b0", label="hotel desk", role=Role.partner,
                        token_hash=bytes(32), created_at=NOW, partner_base_id="base-beidaihe")


def _check_in(world: World, qr: str, key: str, at: dt.datetime | None = None) -> CheckinResult:
    request = CheckinRequest(PROGRAMME, qr, key, at, "offline" if at else "online")
    return world.svc.db.transact(lambda s: check_in(s, world.svc, _partner(), request))


def _refused(world: World, qr: str, key: str, at: dt.datetime | None = None) -> str | None:
    with pytest.raises(Conflict) as caught:
        _check_in(world, qr, key, at)
    return caught.value.reason


def _replace_credential(world: World, card: IssuedCard) -> None:
    """What a reissue does to the old credential: the card row holds another one now."""
    with world.session() as s:
        row = s.exec(select(Card).where(Card.card_number == card.card_number)).one()
        row.credential = bytes(reversed(row.credential or b"x"))
        s.add(row)
        s.commit()


def test_retry_of_an_accepted_check_in_after_the_card_was_replaced_gets_the_stored_answer(
        world: World) -> None:
    world.programme(quota=3)
    card = world.issue_card()
    first = _check_in(world, card.qr, "desk-0000001")
    _replace_credential(world, card)
    again = _check_in(world, card.qr, "desk-0000001")
    assert (again.replayed, again.checkin_id, again.card_number) == (True, first.checkin_id, card.card_number)
    assert _refused(world, card.qr, "desk-0000002") == "credential_superseded"  # a new key is checked


def test_retry_after_revocation_gets_the_stored_answer(world: World) -> None:
    world.programme(quota=3)
    card = world.issue_card()
    first = _check_in(world, card.qr, "desk-0000001")
    world.set_card_status(card, CardStatus.revoked)
    assert _check_in(world, card.qr, "desk-0000001").checkin_id == first.checkin_id


def test_a_key_of_another_card_is_still_refused_before_the_credential_is_current(world: World) -> None:
    world.programme(quota=3)
    _check_in(world, world.issue_card().qr, "desk-0000001")
    other = world.issue_card(world.add_member("李四", id_number="110105194912310037"))
    assert _refused(world, other.qr, "desk-0000001") == "idempotency_key_reused"


def test_backdating_into_an_ended_programme_is_refused(world: World) -> None:
    world.programme(quota=3)  # runs NOW … NOW + 30 days
    card = world.issue_card()
    world.clock.advance(days=35)
    in_programme = world.clock() - dt.timedelta(days=10)
    assert _refused(world, card.qr, "offline-0001", in_programme) == "checked_in_at_too_old"
    assert _refused(world, card.qr, "offline-0002", dt.datetime(1999, 1, 1, tzinfo=dt.UTC)) == (
        "checked_in_at_too_old")
    recent = world.clock() - dt.timedelta(days=6)  # within 7 days, and the programme ran then
    assert _check_in(world, card.qr, "offline-0003", recent).checked_in_at == recent


def test_offline_time_in_the_future_or_without_timezone_is_refused(world: World) -> None:
    world.programme(quota=3)
    card = world.issue_card()
    now = world.clock()
    assert _refused(world, card.qr, "offline-0001", now + dt.timedelta(hours=1)) == "checked_in_at_future"
    assert _refused(world, card.qr, "offline-0002", now.replace(tzinfo=None)) == "checked_in_at_naive"
    within_skew = _check_in(world, card.qr, "offline-0003", now + OFFLINE_CLOCK_SKEW / 2)
    assert within_skew.checked_in_at == now  # a base clock slightly ahead counts as now


def test_the_maximum_offline_age_is_a_setting(world: World) -> None:
    world.programme(quota=3)
    card = world.issue_card()
    svc = dataclasses.replace(world.svc, offline_max_age=dt.timedelta(days=1))
    two_days_ago = world.clock() - dt.timedelta(days=2)
    request = CheckinRequest(PROGRAMME, card.qr, "offline-0001", two_days_ago, "offline")
    with pytest.raises(Conflict) as caught:
        svc.db.transact(lambda s: check_in(s, svc, _partner(), request))
    assert caught.value.reason == "checked_in_at_too_old"
    assert Settings(offline_checkin_max_days=3).offline_checkin_max_days == 3
    assert Settings().offline_checkin_max_days == 7


# --- challenges are purged --------------------------------------------------------------------------


def _challenge_count(world: World) -> int:
    with world.session() as s:
        return len(s.exec(select(Challenge)).all())


def test_expired_challenges_are_purged_as_new_ones_are_made(world: World) -> None:
    for _ in range(3 * CHALLENGE_PURGE_BATCH):
        _challenge(world)
    world.clock.advance(seconds=(CHALLENGE_TTL + CHALLENGE_PURGE_AFTER).total_seconds() + 1)
    live = [_challenge(world) for _ in range(3)]
    assert _challenge_count(world) == 3  # three creates purged 3 × the batch: all the expired ones
    with world.session() as s:
        assert {c.nonce for c in s.exec(select(Challenge)).all()} == set(live)


def test_the_challenge_table_does_not_grow_without_bound(world: World) -> None:
    sizes = []
    for _minute in range(40):
        for _ in range(5):
            _challenge(world)
        world.clock.advance(minutes=1)
        sizes.append(_challenge_count(world))
    bound = 5 * ((CHALLENGE_TTL + CHALLENGE_PURGE_AFTER) // dt.timedelta(minutes=1) + 2)
    assert max(sizes) <= bound and sizes[-1] == sizes[-10]  # steady state, not growth


def test_a_recently_expired_challenge_still_says_expired(world: World) -> None:
    card = world.issue_card(profile=FMCOS)
    nonce = _challenge(world)
    world.clock.advance(seconds=CHALLENGE_TTL.total_seconds() + 1)
    _challenge(world)  # purges only what expired more than the grace ago
    with pytest.raises(Conflict) as caught:
        _reader_tap(world, CardAnswer(nonce, card.uid, "internal_auth", world.internal_auth(card, nonce)))
    assert caught.value.reason == "challenge_expired"


# --- one retry-and-answer loop for the API and the partner pages ------------------------------------


def test_sync_answers_each_item_on_its_own(world: World) -> None:
    world.programme(quota=3)
    card = world.issue_card()
    other = world.issue_card(world.add_member("李四", id_number="110105194912310037"))
    at = world.clock() - dt.timedelta(hours=1)
    items = [CheckinRequest(PROGRAMME, card.qr, "offline-0001", at, "offline"),
             CheckinRequest(PROGRAMME, card.qr, "offline-0001", at, "offline"),
             CheckinRequest(PROGRAMME, other.qr, "offline-0002", at - dt.timedelta(days=30), "offline")]
    answers = sync(world.svc, _partner(), items)
    assert [(a.idempotency_key, a.status, a.reason) for a in answers] == [
        ("offline-0001", "accepted", None), ("offline-0001", "duplicate", None),
        ("offline-0002", "conflict", "checked_in_at_too_old")]
    assert answers[0].checkin_id == answers[1].checkin_id is not None


def test_sync_of_another_base_s_programme_raises(world: World) -> None:
    world.programme(quota=3)
    foreign = dataclasses.replace(_partner(), partner_base_id="base-huangshan")
    with pytest.raises(PermissionDenied):
        sync(world.svc, foreign, [CheckinRequest(PROGRAMME, world.issue_card().qr, "offline-0001")])


def test_concurrent_same_key_check_ins_answer_one_accepted_and_the_rest_as_retries(world: World) -> None:
    world.programme(quota=3)
    card = world.issue_card()
    request = CheckinRequest(PROGRAMME, card.qr, "desk-0000001")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _i: check_in_committed(world.svc, _partner(), request), range(8)))
    assert len({r.checkin_id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 7
