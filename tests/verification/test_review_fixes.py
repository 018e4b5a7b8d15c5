"""Review findings in the verification workflows (SQLite and PostgreSQL): card expiry on every
method, check-in order and offline time bounds, challenge purge."""

from __future__ import annotations

from sqlmodel import Session

from cardsvc.verification.outcome import Verdict, Verification
from cardsvc.verification.service import CardAnswer
from tests.verification.world import FMCOS, NTAG, World

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
