"""Check-ins: idempotency, once per member, atomic quota under concurrency, eligibility, partners' bounds."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from cardsvc.errors import Conflict, NotFound, PermissionDenied
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.cards import CardStatus
from cardsvc.registry.verification_models import ProgrammeMember
from cardsvc.verification.recuperation import (
    CheckinRequest,
    CheckinResult,
    check_in,
    check_out,
    offline_list,
    programme_list_key,
    pseudonym,
)
from cardsvc.verification.roles import Role
from cardsvc.verification.service import VerificationService
from cardsvc.verification.store import read_audit
from cardsvc.verification.tokens import ClientRecord
from tests.verification.replicas import replicas
from tests.verification.world import LIST_SECRET, NOW, World


def partner(base: str = "base-beidaihe", client_id: str = "b0b0b0b0b0b0") -> ClientRecord:
    return ClientRecord(client_id=client_id, label="hotel desk", role=Role.partner, token_hash=bytes(32),
                        created_at=NOW, partner_base_id=base)


def _check_in(world: World, qr: str, key: str, *, client: ClientRecord | None = None,
              programme: str = "prog-beidaihe-2026", svc: VerificationService | None = None,
              at: dt.datetime | None = None) -> CheckinResult:
    service = svc or world.svc
    request = CheckinRequest(programme, qr, key, at, "offline" if at else "online")
    return service.db.transact(lambda s: check_in(s, service, client or partner(), request))


def _reason(world: World, qr: str, key: str, **kw: object) -> str | None:
    with pytest.raises(Conflict) as caught:
        _check_in(world, qr, key, **kw)  # type: ignore[arg-type]
    return caught.value.reason


def test_check_in_then_same_key_replays(world: World) -> None:
    world.programme(quota=5)
    card = world.issue_card()
    first = _check_in(world, card.qr, "key-000001")
    again = _check_in(world, card.qr, "key-000001")
    assert (first.replayed, again.replayed, again.checkin_id) == (False, True, first.checkin_id)
    assert first.quota_left == again.quota_left == 4
    with world.session() as s:
        events = [(r.event.event_type, r.event.subject) for r in read_audit(s)]
    assert events == [("checkin.create", card.card_number)]  # the replay recorded nothing


def test_key_reused_for_another_card(world: World) -> None:
    world.programme()
    _check_in(world, world.issue_card().qr, "key-000001")
    other = world.issue_card(world.add_member("李四", id_number="110105194912310037"))
    assert _reason(world, other.qr, "key-000001") == "idempotency_key_reused"


def test_member_once_per_programme(world: World) -> None:
    world.programme()
    card = world.issue_card()
    _check_in(world, card.qr, "key-000001")
    assert _reason(world, card.qr, "key-000002") == "already_checked_in"


def test_quota_exhausted(world: World) -> None:
    world.programme(quota=1)
    _check_in(world, world.issue_card().qr, "key-000001")
    other = world.issue_card(world.add_member("李四", id_number="110105194912310037"))
    assert _reason(world, other.qr, "key-000002") == "quota_exhausted"


def test_concurrent_check_ins_beyond_quota(world: World) -> None:
    quota, attempts = 7, 30
    world.programme(quota=quota)
    cards = [world.issue_card(world.add_member(f"会员{i}", id_number=f"1101051949123{i:04d}X"))
             for i in range(attempts)]
    outcomes: list[str] = []

    def attempt(i: int, services: list[VerificationService]) -> str:
        try:
            _check_in(world, cards[i].qr, f"key-{i:06d}", svc=services[i % len(services)])
        except Conflict as exc:
            return exc.reason or "conflict"
        return "accepted"

    with replicas(world, 4) as services, ThreadPoolExecutor(max_workers=attempts) as pool:
        outcomes = list(pool.map(lambda i: attempt(i, services), range(attempts)))
    assert outcomes.count("accepted") == quota
    assert set(outcomes) == {"accepted", "quota_exhausted"}
    with world.session() as s:
        assert repo.get_programme(s, code="prog-beidaihe-2026").used == quota


def test_another_partners_programme_is_403_and_unknown_is_404(world: World) -> None:
    world.programme()
    card = world.issue_card()
    with pytest.raises(PermissionDenied):
        _check_in(world, card.qr, "key-000001", client=partner("base-huangshan"))
    with pytest.raises(NotFound):
        _check_in(world, card.qr, "key-000001", programme="no-such-programme")
    with world.session() as s:
        assert repo.audit_count(s) == 0


def test_eligibility_by_category_and_named_list(world: World) -> None:
    world.programme("prog-model", categories=("model_worker",))
    world.programme("prog-named", named_list=True)
    model = world.issue_card(world.add_member("劳模甲", categories=("model_worker",)))
    plain = world.issue_card(world.add_member("职工乙", id_number="110105194912310037"))
    assert _check_in(world, model.qr, "key-000001", programme="prog-model").replayed is False
    assert _reason(world, plain.qr, "key-000002", programme="prog-model") == "category"
    assert _reason(world, plain.qr, "key-000003", programme="prog-named") == "not_on_list"
    with world.session() as s:
        s.add(ProgrammeMember(programme_code="prog-named", member_id=plain.member_id))
        s.commit()
    assert _check_in(world, plain.qr, "key-000004", programme="prog-named").replayed is False


def test_revoked_card_and_programme_dates(world: World) -> None:
    world.programme()
    card = world.issue_card()
    world.set_card_status(card, CardStatus.revoked)
    assert _reason(world, card.qr, "key-000001") == "card_revoked"
    fresh = world.issue_card(world.add_member("李四", id_number="110105194912310037"))
    world.clock.advance(days=40)  # the programme ran for 30 days
    assert _reason(world, fresh.qr, "key-000002") == "programme_not_running"


def test_check_out_once(world: World) -> None:
    world.programme()
    checkin = _check_in(world, world.issue_card().qr, "key-000001")
    done = world.db.transact(lambda s: check_out(s, world.svc, partner(), checkin.checkin_id))
    assert done.checked_out_at == NOW
    with pytest.raises(Conflict) as caught:
        world.db.transact(lambda s: check_out(s, world.svc, partner(), checkin.checkin_id))
    assert caught.value.reason == "already_checked_out"
    with pytest.raises(PermissionDenied):
        world.db.transact(lambda s: check_out(s, world.svc, partner("base-huangshan"), checkin.checkin_id))


def test_offline_list_is_pseudonymous(world: World) -> None:
    world.programme(categories=("model_worker",))
    model = world.issue_card(world.add_member("劳模甲", categories=("model_worker",)))
    world.issue_card(world.add_member("职工乙", id_number="110105194912310037"))
    revoked = world.issue_card(world.add_member("劳模丙", id_number="110105194912310045",
                                                categories=("model_worker",)))
    world.set_card_status(revoked, CardStatus.revoked)
    found = world.db.transact(lambda s: offline_list(s, partner(), "prog-beidaihe-2026", LIST_SECRET))
    key = programme_list_key(LIST_SECRET, "prog-beidaihe-2026")
    assert found.list_key == key
    assert list(found.entries) == [pseudonym(key, model.card_number)]
    assert programme_list_key(LIST_SECRET, "other") != key  # lists of two programmes do not link
    with pytest.raises(PermissionDenied):
        world.db.transact(lambda s: offline_list(s, partner("base-huangshan"), "prog-beidaihe-2026",
                                                 LIST_SECRET))


def test_offline_check_in_keeps_its_time_but_not_a_future_one(world: World) -> None:
    world.programme()
    earlier = NOW - dt.timedelta(hours=3)
    first = _check_in(world, world.issue_card().qr, "key-000001", at=earlier)
    second = _check_in(world, world.issue_card(world.add_member("李四", id_number="110105194912310037")).qr,
                       "key-000002", at=NOW + dt.timedelta(minutes=2))  # within the skew; beyond: 409
    assert (first.checked_in_at, second.checked_in_at) == (earlier, NOW)
