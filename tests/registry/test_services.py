"""Member services: create, find, masking for staff and partners, transfer, erase, consent, rekey."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session

from cardsvc.errors import Conflict, InvalidRecord, NotFound, PiiIntegrityError
from cardsvc.registry.db import session_factory
from cardsvc.registry.masking import Audience
from cardsvc.registry.models import (
    Consent,
    Member,
    MemberCategory,
    MemberCreate,
    MemberEvent,
    MembershipTransfer,
)
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.services import RegistryService
from tests.registry.conftest import DATA_KEY_1, DATA_KEY_2, INDEX_KEY, clock

ZHANG = MemberCreate(name="张小三", id_number="11010519491231002X", phone="13800138000", org_code="G1",
                     categories=("劳模", "frontline_worker"), joined_on=dt.date(2010, 5, 1))
LI = MemberCreate(name="李四", id_number="360426199101010071", phone=None, org_code="G2")


def test_create_and_show_masked(service: RegistryService) -> None:
    member = service.create_member(ZHANG)
    assert (member.name, member.id_number, member.phone) == ("张*三", "110105********002X", "138****8000")
    assert member.gender == "female" and member.birth_date == dt.date(1949, 12, 31)
    assert member.categories == ("model_worker", "frontline_worker") and member.org_code == "G1"
    assert len(member.public_id) == 32
    assert service.get_member(member.public_id) == member


def test_partner_view_shows_last_four_only(service: RegistryService) -> None:
    member = service.create_member(ZHANG)
    partner = service.get_member(member.public_id, audience=Audience.partner)
    assert (partner.name, partner.id_number, partner.phone) == ("张*三", "002X", "")
    assert partner.birth_date is None and partner.gender is None and partner.joined_on is None


def test_find_by_id_number_uses_the_blind_index(service: RegistryService) -> None:
    created = service.create_member(ZHANG)
    assert service.find_member("１１０１０５１９４９１２３１００２ｘ").public_id == created.public_id
    with pytest.raises(NotFound):
        service.find_member("360426199101010071")


def test_same_person_twice_is_a_conflict(service: RegistryService) -> None:
    service.create_member(ZHANG)
    with pytest.raises(Conflict):
        service.create_member(ZHANG.model_copy(update={"org_code": "G2", "name": "张三"}))


@pytest.mark.parametrize(("change", "error"), [
    ({"org_code": "T01"}, InvalidRecord), ({"org_code": "NOPE"}, NotFound),
    ({"id_number": "110105194912310021"}, InvalidRecord), ({"categories": ("队长",)}, InvalidRecord),
    ({"phone": "12345"}, InvalidRecord), ({"name": "张3"}, InvalidRecord),
])
def test_create_refuses_bad_input(service: RegistryService, change: dict[str, object],
                                  error: type[Exception]) -> None:
    with pytest.raises(error):
        service.create_member(ZHANG.model_copy(update=change))
    assert service.list_members() == []


def test_list_filters_by_org(service: RegistryService) -> None:
    service.create_member(ZHANG)
    service.create_member(LI)
    assert [m.name for m in service.list_members(org_code="G2")] == ["李*"]
    assert len(service.list_members()) == 2 and len(service.list_members(limit=1, offset=1)) == 1


def test_transfer_keeps_history(service: RegistryService, engine: Engine) -> None:
    member = service.create_member(ZHANG)
    moved = service.transfer(member.public_id, to_org="G3", on=dt.date(2025, 3, 1), reason="调动")
    assert moved.org_code == "G3"
    with pytest.raises(Conflict):
        service.transfer(member.public_id, to_org="G3")
    with pytest.raises(InvalidRecord):
        service.transfer(member.public_id, to_org="P01")
    with Session(engine) as session:
        history = session.exec(select(MembershipTransfer)).scalars().all()
    assert [(h.transferred_on, h.reason) for h in history] == [(dt.date(2025, 3, 1), "调动")]


def test_erase_removes_personal_data_and_keeps_history(service: RegistryService, engine: Engine) -> None:
    member = service.create_member(ZHANG)
    service.transfer(member.public_id, to_org="G2")
    service.record_consent(member.public_id, partner="HOTEL-01", purpose="会员优惠")
    service.erase(member.public_id)
    with Session(engine) as session:
        row = session.exec(select(Member)).scalars().one()
        assert row.public_id == member.public_id and row.status == "erased" and row.erased_at is not None
        assert (row.name, row.id_sealed, row.id_index, row.phone_sealed, row.phone_index) == ("", None, None,
                                                                                               None, None)
        assert row.gender is None and row.birth_date is None
        assert session.exec(select(MemberCategory)).scalars().all() == []
        assert len(session.exec(select(MembershipTransfer)).scalars().all()) == 1
        assert len(session.exec(select(Consent)).scalars().all()) == 1
        actions = [e.action for e in session.exec(select(MemberEvent).order_by(MemberEvent.id)).scalars()]
    assert actions == ["created", "transferred", "consent", "erased"]
    shown = service.get_member(member.public_id)
    assert (shown.name, shown.id_number, shown.phone, shown.status) == ("", "", "", "erased")
    with pytest.raises(NotFound):
        service.find_member(ZHANG.id_number)
    with pytest.raises(Conflict):
        service.erase(member.public_id)
    again = service.create_member(ZHANG)  # the person may join again: a new pseudonym
    assert again.public_id != member.public_id


def test_ciphertext_copied_onto_another_member_does_not_open(service: RegistryService,
                                                             engine: Engine) -> None:
    zhang = service.create_member(ZHANG)
    li = service.create_member(LI)
    with Session(engine) as session:
        stolen = session.exec(select(Member.id_sealed).where(Member.public_id == zhang.public_id)).one()[0]
        session.exec(update(Member).where(Member.public_id == li.public_id).values(id_sealed=stolen))
        session.commit()
    with pytest.raises(PiiIntegrityError):
        service.get_member(li.public_id)
    assert service.get_member(zhang.public_id).id_number == "110105********002X"


def test_rekey_moves_every_member_to_the_new_key(service: RegistryService, engine: Engine) -> None:
    created = [service.create_member(ZHANG), service.create_member(LI)]
    both_keys = PiiCipher({1: DATA_KEY_1, 2: DATA_KEY_2}, 2, INDEX_KEY)
    rotated = RegistryService(session_factory(engine), both_keys, clock=clock)
    assert rotated.rekey() == 2
    assert rotated.rekey() == 0  # resumable and idempotent
    only_new = RegistryService(session_factory(engine), PiiCipher({2: DATA_KEY_2}, 2, INDEX_KEY), clock=clock)
    assert [only_new.get_member(m.public_id).id_number for m in created] == [m.id_number for m in created]
    assert only_new.reveal_id_number(created[0].public_id) == ZHANG.id_number
    with pytest.raises(PiiIntegrityError):
        service.get_member(created[0].public_id)  # the old-key-only service cannot read v2 rows


def test_logs_never_carry_personal_data(service: RegistryService, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cardsvc")
    member = service.create_member(ZHANG)
    service.transfer(member.public_id, to_org="G2")
    service.erase(member.public_id)
    text = caplog.text
    assert member.public_id in text
    for secret in (ZHANG.id_number, ZHANG.phone or "", ZHANG.name, "张*三"):
        assert secret not in text


def test_consent_is_recorded_and_withdrawn(service: RegistryService, engine: Engine) -> None:
    member = service.create_member(ZHANG)
    service.record_consent(member.public_id, partner="HOTEL-01", purpose="会员优惠")
    service.record_consent(member.public_id, partner="PARK-02", purpose="入园")
    assert service.withdraw_consent(member.public_id, partner="HOTEL-01") == 1
    assert service.withdraw_consent(member.public_id, partner="HOTEL-01") == 0
    with Session(engine) as session:
        rows = {c.partner: c.withdrawn_at for c in session.exec(select(Consent)).scalars()}
    assert rows == {"HOTEL-01": clock(), "PARK-02": None}


def test_database_failures_become_registry_errors(tmp_path, cipher: PiiCipher) -> None:
    from cardsvc.errors import RegistryError
    from cardsvc.registry.db import make_engine

    engine = make_engine("postgresql+psycopg://nobody@/x?host=/nonexistent&port=1&connect_timeout=1")
    service = RegistryService(session_factory(engine), cipher, clock=clock)
    with pytest.raises(RegistryError, match="database unavailable") as info:
        service.list_members()
    assert "CARDSVC_DATABASE_URL" in info.value.diagnostics()


def test_a_lost_race_is_a_conflict(service: RegistryService, monkeypatch: pytest.MonkeyPatch) -> None:
    from cardsvc.registry import repo

    service.create_member(ZHANG)
    # Another clerk registered the same person between our check and our insert:
    monkeypatch.setattr(repo, "find_member_by_index", lambda *_a, **_k: None)
    with pytest.raises(Conflict, match="race"):
        service.create_member(ZHANG)
    assert len(service.list_members()) == 1
