"""The hot reads on the DBAPI cursor (:mod:`cardsvc.verification.prepared`) return the same rows,
values and types as the same statements run through SQLAlchemy (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from cardsvc.registry import verification_repo as repo
from cardsvc.registry.cards import CardStatus
from cardsvc.registry.models import MemberStatus
from cardsvc.registry.verification_models import SunCounter
from cardsvc.verification.prepared import PreparedRead
from cardsvc.verification.recuperation import PROGRAMMES_OF_BASE
from cardsvc.verification.service import CARD_BY_NUMBER, CARD_BY_UID, advance_sun_counter
from tests.verification.world import NOW, World


def _typed(row: Any) -> list[tuple[Any, type]]:
    return [(value, type(value)) for value in tuple(row)]


def test_card_rows_match_sqlalchemy(world: World) -> None:
    card = world.issue_card(world.add_member("欧阳娜娜", status=MemberStatus.suspended))
    world.set_card_status(card, CardStatus.lost)
    with world.session() as s:
        core = repo.card_with_member(s, card_number=card.card_number)
        fast = CARD_BY_NUMBER.first(s, card_number=card.card_number)
        by_uid = CARD_BY_UID.first(s, uid_hash=world.card_keys.uid_hash(card.uid))
        assert CARD_BY_NUMBER.first(s, card_number="nope") is None
    assert _typed(fast) == _typed(core) == _typed(by_uid)
    assert fast._fields == tuple(core._fields)
    assert (fast.status, fast.member_status, fast.name) == (CardStatus.lost, core.member_status, "欧阳娜娜")


def test_programme_rows_match_sqlalchemy(world: World) -> None:
    world.programme("prog-b", quota=4)
    world.programme("prog-a", quota=9, categories=("model_worker",))
    with world.session() as s:
        core = repo.programmes_of_base(s, base_code="base-beidaihe")
        fast = PROGRAMMES_OF_BASE.all(s, base_code="base-beidaihe")
        assert PROGRAMMES_OF_BASE.all(s, base_code="no-such-base") == []
    assert [_typed(r) for r in fast] == [_typed(r) for r in core]
    assert [r.code for r in fast] == ["prog-a", "prog-b"]


def test_a_statement_is_compiled_once_per_dialect(world: World) -> None:
    read = PreparedRead(repo.CARD_BY_NUMBER)
    with world.session() as s:
        read.all(s, card_number="x")
        read.all(s, card_number="y")
    assert list(read._plans) == [world.db.engine.dialect.name]


def test_the_counter_compare_and_set_on_the_cursor_matches_the_repo(world: World) -> None:
    card = world.issue_card()
    steps = [(5, True), (5, False), (4, False), (9, True)]  # grows only; one winner per value
    with world.session() as s:
        number = card.card_number
        fast = [advance_sun_counter(s, card_number=number, counter=c, now=NOW) for c, _ in steps]
        s.rollback()  # the cursor's writes were in the session's transaction: all undone
        core = [repo.advance_sun_counter(s, card_number=number, counter=c, now=NOW) for c, _ in steps]
        s.commit()
        assert s.exec(select(SunCounter)).one().last == 9
    assert fast == core == [won for _, won in steps]


def test_eligibility_reads_match_sqlalchemy(world: World) -> None:
    from cardsvc.registry.verification_models import ProgrammeMember
    from cardsvc.verification.recuperation import IN_NAMED_LIST, MEMBER_CATEGORIES

    world.programme("prog-named", named_list=True)
    member = world.add_member("劳模乙", categories=("model_worker",))
    other = world.add_member("职工丙")
    with world.session() as s:
        s.add(ProgrammeMember(programme_code="prog-named", member_id=member.id))
        s.commit()
    with world.session() as s:
        for who in (member, other):
            core = [tuple(r) for r in s.connection().execute(repo.MEMBER_CATEGORIES, {"member_id": who.id})]
            fast = [tuple(r) for r in MEMBER_CATEGORIES.all(s, member_id=who.id)]
            assert fast == core
            listed = s.connection().execute(repo.IN_NAMED_LIST, {"programme": "prog-named",
                                                                 "member": who.id}).first()
            assert (IN_NAMED_LIST.first(s, programme="prog-named", member=who.id) is None) is (listed is None)
        assert [r.code for r in MEMBER_CATEGORIES.all(s, member_id=member.id)] == ["model_worker"]
        assert IN_NAMED_LIST.first(s, programme="prog-named", member=member.id) is not None
