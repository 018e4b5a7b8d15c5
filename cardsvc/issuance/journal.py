"""The per-card issuance journal: every arrow is one committed transaction.

``reserved → writing → written → verified → issued``, side exits ``voided`` (number burned, no chip
written) and ``spoiled`` (chip unusable). A step is committed before the next card step starts, so
a crash leaves at most one arrow unrecorded and recovery reads the card to decide. Nothing here
deletes a card row.

Reservation (one transaction): claim an unheld reserved row of the batch (a replacement, or one a
stopped station released), else bump the number counter (``UPDATE … RETURNING`` — the row lock
serialises stations on PostgreSQL and SQLite's write lock does the same), pick the next member who
needs a card, and insert the row. If no member is left the transaction rolls back: no number is
used. The partial unique index (one live card per member) is the last guard; a violation retries
with the next member inside a savepoint.

Database failures surface as :class:`IssuanceError` with code ``database``; callers must not send
an APDU for a step whose commit raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as SaInterfaceError
from sqlmodel import Session

from cardsvc.errors import Conflict, IssuanceError
from cardsvc.issuance.numbering import NumberScheme
from cardsvc.logging import get_logger
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Batch, Card, CardStatus, JournalState
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.models import utcnow

log = get_logger(__name__)
Clock = Callable[[], dt.datetime]
MAX_MEMBER_RETRIES = 20


class DatabaseUnavailable(IssuanceError):
    """The database did not accept the step; nothing after it was sent to the card."""

    code = "database"
    hint = "check the database connection; rerun the batch to resume"


class _NothingLeft(Exception):
    """No member of the batch needs a card (internal: rolls the reservation back)."""


class Journal:
    """Committed journal steps for one station (``actor`` names it in the card history)."""

    def __init__(self, sessions: SessionFactory, *, actor: str, clock: Clock = utcnow) -> None:
        self._sessions = sessions
        self.actor = actor
        self._clock = clock
        self._took_back = False  # the first reserve takes back what this station still holds

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One committed transaction; database-level failures become :class:`DatabaseUnavailable`."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except (OperationalError, SaInterfaceError) as exc:
            raise DatabaseUnavailable(f"database step failed: {exc.__class__.__name__}") from exc

    # --- reservation -------------------------------------------------------------------------

    def reserve(self, batch: Batch) -> Card | None:
        """A reserved card (number bound to a member) held by this station, or ``None`` when done.
        The first call takes back a reservation the station (``actor``) still holds from a run that
        died; later calls take unheld or new ones (this journal already holds what it reserved)."""
        try:
            card = self._reserve(batch, own=not self._took_back)
        except _NothingLeft:
            card = None
        self._took_back = True
        return card

    def _reserve(self, batch: Batch, *, own: bool) -> Card:
        with self.transaction() as session:
            card_repo.lock_counter(session, prefix=batch.prefix, year=batch.year)
            claimed = card_repo.claim_reserved(session, batch_id=_bid(batch), station=self.actor, own=own)
            if claimed is not None:
                return claimed
            card = self._reserve_new(session, batch)
            if card is None:
                raise _NothingLeft  # roll back: the counter bump is undone
            return card

    def _reserve_new(self, session: Session, batch: Batch) -> Card | None:
        sequence = card_repo.allocate_sequence(session, prefix=batch.prefix, year=batch.year)
        number = NumberScheme(batch.prefix, batch.year, batch.number_length).format(sequence)
        skip: list[int] = []
        for _ in range(MAX_MEMBER_RETRIES):
            member_id = card_repo.next_candidate(session, batch_id=_bid(batch), skip=skip)
            if member_id is None:
                return None
            card = self._insert(session, batch, number, member_id)
            if card is not None:
                return card
            skip.append(member_id)
        raise IssuanceError("could not reserve a card: members keep getting cards elsewhere")

    def _insert(self, session: Session, batch: Batch, number: str, member_id: int) -> Card | None:
        now = self._clock()
        card = Card(card_number=number, batch_id=_bid(batch), member_id=member_id, profile=batch.profile,
                    key_version=batch.key_version, station=self.actor, created_at=now, updated_at=now)
        try:
            with session.begin_nested():
                card_repo.add_card(session, card=card)
        except IntegrityError:
            log.info("member %d got a live card concurrently; trying the next member", member_id)
            return None
        card_repo.add_event(session, card_id=_cid(card), action="journal", to_state="reserved",
                            actor=self.actor)
        return card

    def reserve_for_member(self, session: Session, batch: Batch, member_id: int, *,
                           replaces: Card | None) -> Card:
        """Inside the caller's transaction: a new unheld reservation for ``member_id`` (replace/renew)."""
        sequence = card_repo.allocate_sequence(session, prefix=batch.prefix, year=batch.year)
        now = self._clock()
        card = Card(card_number=NumberScheme(batch.prefix, batch.year, batch.number_length).format(sequence),
                    batch_id=_bid(batch), member_id=member_id, profile=batch.profile,
                    key_version=batch.key_version, replaces_id=replaces.id if replaces else None,
                    created_at=now, updated_at=now)
        try:
            card_repo.add_card(session, card=card)
        except IntegrityError as exc:
            raise Conflict("the member already has a live card") from exc
        card_repo.add_event(session, card_id=_cid(card), action="journal", to_state="reserved",
                            actor=self.actor, detail=f"replaces {replaces.card_number}" if replaces else "")
        return card

    def release(self, card: Card) -> None:
        """Give an unused reservation back to the batch (same number, same member, no chip)."""
        with self.transaction() as session:
            card_repo.move_state(session, card=card, expected=JournalState.reserved,
                                 values={"station": None, "updated_at": self._clock()},
                                 actor=self.actor, detail="released")

    # --- arrows ------------------------------------------------------------------------------

    def bind(self, card: Card, *, uid_hash: bytes, credential: bytes, issued_at: dt.datetime,
             expires_at: dt.datetime) -> Card:
        """reserved → writing: the chip is bound (keyed UID hash) with the credential to write."""
        values = {"state": JournalState.writing.value, "uid_hash": uid_hash, "credential": credential,
                  "issued_at": issued_at, "expires_at": expires_at}
        try:
            return self._move(card, JournalState.reserved, values)
        except IntegrityError as exc:
            raise Conflict("this chip is already bound to another card") from exc

    def written(self, card: Card) -> Card:
        return self._move(card, JournalState.writing, {"state": JournalState.written.value})

    def verified(self, card: Card) -> Card:
        return self._move(card, JournalState.written, {"state": JournalState.verified.value})

    def issued(self, card: Card) -> Card:
        values: dict[str, object] = {"state": JournalState.issued.value, "status": CardStatus.active.value,
                                     "station": None}
        return self._move(card, JournalState.verified, values)

    def spoil(self, card: Card, reason: str) -> Card:
        """A chip that cannot be brought to a good state: number burned, member needs a new card."""
        values = {"state": JournalState.spoiled.value, "live": False, "reason": reason[:200]}
        return self._move(card, JournalState(card.state), values, detail=reason)

    def void(self, card: Card, reason: str) -> Card:
        """A reservation abandoned before any chip was bound: its number is burned."""
        values = {"state": JournalState.voided.value, "live": False, "station": None,
                  "reason": reason[:200]}
        return self._move(card, JournalState.reserved, values, detail=reason)

    def _move(self, card: Card, expected: JournalState, values: dict[str, object],
              detail: str = "") -> Card:
        with self.transaction() as session:
            moved = card_repo.move_state(session, card=card, expected=expected,
                                         values={**values, "updated_at": self._clock()},
                                         actor=self.actor, detail=detail)
        log.info("card %s: %s → %s", moved.card_number, expected.value, moved.state)
        return moved

    # --- lookups -----------------------------------------------------------------------------

    def find_by_uid_hash(self, uid_hash: bytes) -> Card | None:
        with self.transaction() as session:
            return card_repo.find_card_by_uid_hash(session, uid_hash=uid_hash)

    def member_categories(self, member_id: int) -> tuple[str, ...]:
        with self.transaction() as session:
            return card_repo.member_category_ids(session, member_id=member_id)


def _bid(batch: Batch) -> int:
    if batch.id is None:
        raise IssuanceError("batch has no id")
    return batch.id


def _cid(card: Card) -> int:
    if card.id is None:
        raise IssuanceError("card has no id")
    return card.id
