"""Card repository functions: keyword-only, they flush but never commit (workflows own transactions).

Concurrency: several stations may share one PostgreSQL. Numbers come from
:func:`allocate_sequence` (``UPDATE … RETURNING`` on the counter row: the row lock serialises
reservations until the reserving transaction commits or rolls back, so a rolled-back reservation
never consumes a number). State changes are compare-and-set (:func:`move_state`): an ``UPDATE``
whose ``WHERE`` names the expected state, so two stations can never both move the same row.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Update, and_, bindparam, exists, func, insert, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from cardsvc.errors import Conflict, NotFound
from cardsvc.registry.cards import (
    Batch,
    BatchMember,
    Card,
    CardEvent,
    CardNumberCounter,
    CardStatus,
    JournalState,
    PrintRecord,
)
from cardsvc.registry.models import Member, MemberCategory, MemberStatus, table_of, utcnow

CARD = table_of(Card)
COUNTER = table_of(CardNumberCounter)
BATCH_MEMBER = table_of(BatchMember)
MEMBER = table_of(Member)
PRINT = table_of(PrintRecord)
EVENT = table_of(CardEvent)
_INSERT_EVENT = insert(EVENT)  # one compiled statement for every journal arrow
_CARD_BY_UID_HASH = sa_select(CARD.c.id).where(CARD.c.uid_hash == bindparam("uid_hash"))


# --- batches -----------------------------------------------------------------------------------


def add_batch(session: Session, *, batch: Batch, member_ids: Iterable[int]) -> Batch:
    session.add(batch)
    session.flush()
    rows = [{"batch_id": batch.id, "member_id": m} for m in sorted(set(member_ids))]
    if rows:
        session.connection().execute(insert(BATCH_MEMBER), rows)
    return batch


def get_batch(session: Session, *, label: str) -> Batch:
    batch = session.exec(select(Batch).where(col(Batch.label) == label)).first()
    if batch is None:
        raise NotFound(f"no batch {label!r}", hint="`cardsvc batch list` shows the batches")
    return batch


def get_batch_by_id(session: Session, *, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    return batch


def list_batches(session: Session) -> list[Batch]:
    return list(session.exec(select(Batch).order_by(col(Batch.id))))


def batch_member_count(session: Session, *, batch_id: int) -> int:
    query = sa_select(func.count()).select_from(BATCH_MEMBER).where(BATCH_MEMBER.c.batch_id == batch_id)
    return int(session.connection().execute(query).scalar_one())


def state_counts(session: Session, *, batch_id: int) -> dict[str, int]:
    query = (sa_select(CARD.c.state, func.count()).where(CARD.c.batch_id == batch_id)
             .group_by(CARD.c.state))
    return {str(state): int(n) for state, n in session.connection().execute(query)}


# --- numbers -----------------------------------------------------------------------------------


def ensure_counter(session: Session, *, prefix: str, year: int) -> None:
    if session.get(CardNumberCounter, (prefix, year)) is None:
        session.add(CardNumberCounter(prefix=prefix, year=year, next_seq=1))
        session.flush()


def lock_counter(session: Session, *, prefix: str, year: int) -> None:
    """Take the counter row's lock first: on SQLite this makes the transaction a writer before it
    reads (no stale-snapshot upgrade failure); on PostgreSQL it queues reservers on one row."""
    session.connection().execute(_LOCK_COUNTER, {"of_prefix": prefix, "of_year": year})


def allocate_sequence(session: Session, *, prefix: str, year: int) -> int:
    """Take the next sequence number (locks the counter row until the transaction ends)."""
    params = {"of_prefix": prefix, "of_year": year}
    taken = session.connection().execute(_ALLOCATE, params).scalar_one_or_none()
    if taken is None:
        raise NotFound(f"no card-number counter for prefix {prefix} and year {year}")
    return int(taken) - 1


_THIS_COUNTER = and_(COUNTER.c.prefix == bindparam("of_prefix"), COUNTER.c.year == bindparam("of_year"))
_LOCK_COUNTER = update(COUNTER).where(_THIS_COUNTER).values(next_seq=COUNTER.c.next_seq)
_ALLOCATE = (update(COUNTER).where(_THIS_COUNTER).values(next_seq=COUNTER.c.next_seq + 1)
             .returning(COUNTER.c.next_seq))


# --- reservation -------------------------------------------------------------------------------


def _done_or_live(batch_id: Any) -> Any:
    """A member already has a live card, or already got an issued card from this batch."""
    return exists().where(
        CARD.c.member_id == BATCH_MEMBER.c.member_id,
        or_(CARD.c.live.is_(True),
            and_(CARD.c.batch_id == batch_id, CARD.c.state == JournalState.issued.value)))


def _candidates(batch_id: Any) -> Any:
    return (sa_select(BATCH_MEMBER.c.member_id)
            .join(MEMBER, MEMBER.c.id == BATCH_MEMBER.c.member_id)
            .where(BATCH_MEMBER.c.batch_id == batch_id,
                   MEMBER.c.status == MemberStatus.active.value, ~_done_or_live(batch_id))
            .order_by(BATCH_MEMBER.c.member_id).limit(1))


_NEXT_CANDIDATE = _candidates(bindparam("batch_id"))  # built once: reserving runs it per card


def next_candidate(session: Session, *, batch_id: int, skip: Sequence[int] = ()) -> int | None:
    """The first batch member (by id) who is active and still needs a card from this batch."""
    query = _NEXT_CANDIDATE
    if skip:
        query = _candidates(batch_id).where(BATCH_MEMBER.c.member_id.not_in(list(skip)))
    found = session.connection().execute(query, {"batch_id": batch_id}).scalar_one_or_none()
    return None if found is None else int(found)


def member_category_ids(session: Session, *, member_id: int) -> tuple[str, ...]:
    """A member's category ids as text (the compact form the 128-byte credential carries)."""
    query = (sa_select(col(MemberCategory.category_id)).where(col(MemberCategory.member_id) == member_id)
             .order_by(col(MemberCategory.category_id)))
    return tuple(str(i) for i in session.connection().execute(query).scalars())


def max_categories(session: Session, *, batch_id: int) -> int:
    """The most categories any member of the batch has (sizes the worst-case credential)."""
    per_member = (sa_select(func.count().label("n")).select_from(MemberCategory)
                  .join(BatchMember, col(BatchMember.member_id) == col(MemberCategory.member_id))
                  .where(col(BatchMember.batch_id) == batch_id)
                  .group_by(col(MemberCategory.member_id)).subquery())
    found = session.connection().execute(sa_select(func.max(per_member.c.n))).scalar_one_or_none()
    return int(found or 0)


def pending_members(session: Session, *, batch_id: int) -> int:
    """Active batch members with neither a live card nor an issued card from this batch."""
    query = (sa_select(func.count()).select_from(BATCH_MEMBER)
             .join(MEMBER, MEMBER.c.id == BATCH_MEMBER.c.member_id)
             .where(BATCH_MEMBER.c.batch_id == batch_id,
                    MEMBER.c.status == MemberStatus.active.value, ~_done_or_live(batch_id)))
    return int(session.connection().execute(query).scalar_one())


def add_card(session: Session, *, card: Card) -> Card:
    session.add(card)
    session.flush()
    return card


def claim_reserved(session: Session, *, batch_id: int, station: str, own: bool = False) -> Card | None:
    """Take a reserved card of the batch for ``station`` (compare-and-set): with ``own``, one it
    already holds first (a restarted station takes its reservation back), else an unheld one."""
    me = station if own else None  # NULL: `station = NULL` never matches, so only unheld cards
    params = {"batch_id": batch_id, "me": me}
    for card_id in session.connection().execute(_CLAIMABLE, params).scalars().all():
        claim = {"card_id": card_id, "me": me, "station": station}
        if session.connection().execute(_CLAIM, claim).rowcount == 1:
            return session.get(Card, card_id)
    return None


_RESERVED_FOR_ME = and_(CARD.c.state == JournalState.reserved.value,
                        or_(CARD.c.station.is_(None), CARD.c.station == bindparam("me")))
_CLAIMABLE = (sa_select(CARD.c.id).where(CARD.c.batch_id == bindparam("batch_id"), _RESERVED_FOR_ME)
              .order_by(CARD.c.station.is_(None), CARD.c.id).limit(5))
_CLAIM = (update(CARD).where(CARD.c.id == bindparam("card_id"), _RESERVED_FOR_ME)
          .values(station=bindparam("station")))


# --- cards -------------------------------------------------------------------------------------


def get_card(session: Session, *, card_number: str) -> Card:
    card = session.exec(select(Card).where(col(Card.card_number) == card_number)).first()
    if card is None:
        raise NotFound(f"no card {card_number}")
    return card


def get_card_by_id(session: Session, *, card_id: int) -> Card:
    card = session.get(Card, card_id)
    if card is None:
        raise NotFound(f"no card with id {card_id}")
    return card


def find_card_by_uid_hash(session: Session, *, uid_hash: bytes) -> Card | None:
    """The card bound to a chip; a new chip (the usual case) costs one indexed id probe."""
    card_id = session.connection().execute(_CARD_BY_UID_HASH, {"uid_hash": uid_hash}).scalar_one_or_none()
    return None if card_id is None else session.get(Card, card_id)


def live_card_of_member(session: Session, *, member_id: int) -> Card | None:
    query = select(Card).where(col(Card.member_id) == member_id, col(Card.live).is_(True))
    return session.exec(query).first()


def cards_in_states(session: Session, *, batch_id: int, states: Iterable[JournalState]) -> list[Card]:
    query = (select(Card).where(col(Card.batch_id) == batch_id,
                                col(Card.state).in_([s.value for s in states]))
             .order_by(col(Card.id)))
    return list(session.exec(query))


def cards_of_member(session: Session, *, member_id: int) -> list[Card]:
    return list(session.exec(select(Card).where(col(Card.member_id) == member_id).order_by(col(Card.id))))


def move_state(session: Session, *, card: Card, expected: JournalState, values: dict[str, Any],
               actor: str, detail: str = "") -> Card:
    """Compare-and-set a card's journal state and record the arrow; :class:`Conflict` if it moved."""
    new_state = values.get("state", expected)
    params = {**values, "_card_id": card.id, "_expected": JournalState(expected).value}
    if session.connection().execute(_move_statement(tuple(sorted(values))), params).rowcount != 1:
        raise Conflict(f"card {card.card_number} is no longer {JournalState(expected).value}")
    add_event(session, card_id=_id(card), action="journal", from_state=JournalState(expected).value,
              to_state=JournalState(new_state).value, actor=actor, detail=detail)
    for key, value in values.items():  # mirror the row without a re-read and without a second UPDATE
        set_committed_value(card, key, value)
    return card


@functools.cache
def _move_statement(columns: tuple[str, ...]) -> Update:
    """One prepared compare-and-set ``UPDATE`` per set of columns (the journal uses a handful):
    built and compiled once instead of per arrow."""
    return (update(CARD).where(CARD.c.id == bindparam("_card_id"), CARD.c.state == bindparam("_expected"))
            .values({name: bindparam(name) for name in columns}))


def set_status(session: Session, *, card: Card, expected: CardStatus, status: CardStatus, live: bool,
               actor: str, action: str, detail: str = "", now: dt.datetime) -> Card:
    """Compare-and-set an issued card's lifecycle status and record the change.

    One ``UPDATE … WHERE id AND state = 'issued' AND status = :expected``: the status the caller read
    and checked. A concurrent change committed in between (or holding the row on PostgreSQL until it
    commits) leaves no row to update, and :class:`Conflict` says so — the later change never
    overwrites the earlier one.
    """
    statement = (update(CARD).where(CARD.c.id == card.id, CARD.c.state == JournalState.issued.value,
                                    CARD.c.status == expected.value)
                 .values(status=status.value, live=live, updated_at=now))
    if session.connection().execute(statement).rowcount != 1:
        raise Conflict(f"card {card.card_number} changed concurrently (it is no longer {expected.value}): "
                       f"cannot {action}", reason="status_changed",
                       hint="`cardsvc card show` gives its status now; retry if the change still applies")
    add_event(session, card_id=_id(card), action=action, from_state=expected.value, to_state=status.value,
              actor=actor, detail=detail)
    for key, value in (("status", status), ("live", live), ("updated_at", now)):
        set_committed_value(card, key, value)  # mirror the row without a re-read
    return card


def add_event(session: Session, *, card_id: int, action: str, from_state: str = "", to_state: str = "",
              actor: str = "", detail: str = "") -> None:
    session.connection().execute(_INSERT_EVENT, {
        "card_id": card_id, "action": action, "from_state": from_state, "to_state": to_state,
        "actor": actor[:100], "detail": detail[:200], "at": utcnow()})


def card_events(session: Session, *, card_id: int) -> list[CardEvent]:
    query = select(CardEvent).where(col(CardEvent.card_id) == card_id).order_by(col(CardEvent.id))
    return list(session.exec(query))


def revoked_card_numbers(session: Session) -> list[str]:
    """Issued cards that must not verify: revoked, lost (on hold) or suspended — for the trust bundle."""
    held = [CardStatus.revoked.value, CardStatus.lost.value, CardStatus.suspended.value]
    query = (sa_select(CARD.c.card_number).where(CARD.c.state == JournalState.issued.value,
                                                 CARD.c.status.in_(held))
             .order_by(CARD.c.card_number))
    return [str(n) for n in session.connection().execute(query).scalars()]


# --- printing ----------------------------------------------------------------------------------


def printable_cards(session: Session, *, batch_id: int) -> list[Card]:
    query = (select(Card).where(col(Card.batch_id) == batch_id, col(Card.state) == JournalState.issued,
                                col(Card.status) == CardStatus.active)
             .order_by(col(Card.card_number)))
    return list(session.exec(query))


def print_count(session: Session, *, card_id: int, kind: str) -> int:
    query = (sa_select(func.count()).select_from(PRINT)
             .where(PRINT.c.card_id == card_id, PRINT.c.kind == kind))
    return int(session.connection().execute(query).scalar_one())


def add_print(session: Session, *, card_id: int, kind: str, target: str, now: dt.datetime) -> PrintRecord:
    """Record one print of ``kind`` (sheet, qr); any earlier one of that kind makes it a reprint."""
    reprint = print_count(session, card_id=card_id, kind=kind) > 0
    record = PrintRecord(card_id=card_id, kind=kind, target=target[-200:], reprint=reprint, at=now)
    session.add(record)
    session.flush()
    return record


def _id(card: Card) -> int:
    if card.id is None:
        raise NotFound("card row has no id (not flushed)")
    return card.id
