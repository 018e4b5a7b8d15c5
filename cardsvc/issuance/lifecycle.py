"""Card lifecycle after issue: suspend, resume, lost, revoke, replace, renew — each one transaction
with a history row, reported to an optional audit sink.

Status machine of an issued card (``live`` = still the member's one card):

    active ⇄ suspended        active/suspended → lost (on hold)        lost → active (found)
    any but revoked → revoked (live off)
    replace/renew: the old card is revoked AND a new reservation (new number, same member) is created
    in the same transaction, for a station to personalise.

Suspended, lost and revoked cards are on the revocation list of the next trust bundle
(:func:`cardsvc.registry.card_repo.revoked_card_numbers`). A reservation not yet written can only be
revoked, which voids it (its number is burned).

Concurrency: every status change is a compare-and-set on the status that was read and checked
(:func:`cardsvc.registry.card_repo.set_status`), so of two clerks acting on one card at once the
second gets :class:`~cardsvc.errors.Conflict` (reason ``status_changed``) instead of silently undoing
the first — a revoked card can never come back through a racing suspend/resume. Database failures
surface as :class:`~cardsvc.issuance.journal.DatabaseUnavailable`, constraint violations as
``Conflict``; nothing from SQLAlchemy leaves this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from cardsvc.errors import Conflict, IssuanceError
from cardsvc.issuance.journal import Clock, Journal
from cardsvc.issuance.numbering import check_card_number
from cardsvc.logging import get_logger
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Card, CardEvent, CardStatus, JournalState
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.models import Member, utcnow

log = get_logger(__name__)

_FROM: dict[str, frozenset[CardStatus]] = {
    "suspend": frozenset({CardStatus.active}),
    "resume": frozenset({CardStatus.suspended, CardStatus.lost}),
    "lost": frozenset({CardStatus.active, CardStatus.suspended}),
    "revoke": frozenset({CardStatus.active, CardStatus.suspended, CardStatus.lost}),
    "replace": frozenset({CardStatus.active, CardStatus.suspended, CardStatus.lost}),
    "renew": frozenset({CardStatus.active, CardStatus.suspended}),
}
_TO = {"suspend": CardStatus.suspended, "resume": CardStatus.active, "lost": CardStatus.lost,
       "revoke": CardStatus.revoked}


@dataclass(frozen=True, slots=True)
class LifecycleChange:
    """What the audit log receives: pseudonymous (card numbers and member public id only)."""

    action: str
    card_number: str
    member_public_id: str
    from_status: str
    to_status: str
    actor: str
    reason: str
    new_card_number: str | None = None


@dataclass(frozen=True, slots=True)
class CardView:
    card_number: str
    state: str
    status: str | None
    live: bool
    batch: str
    member_public_id: str
    profile: str
    key_version: int
    issued_at: str | None
    expires_at: str | None
    reason: str
    events: Sequence[CardEvent]


AuditSink = Callable[[Session, LifecycleChange], None]  # runs inside the change's transaction


class LifecycleService:
    def __init__(self, sessions: SessionFactory, *, actor: str, clock: Clock = utcnow,
                 audit: AuditSink | None = None) -> None:
        self._sessions = sessions
        self._actor = actor
        self._clock = clock
        self._audit = audit or (lambda _session, _change: None)
        self._journal = Journal(sessions, actor=actor, clock=clock)

    def show(self, card_number: str) -> CardView:
        with self._journal.transaction() as session:
            card = card_repo.get_card(session, card_number=check_card_number(card_number))
            batch = card_repo.get_batch_by_id(session, batch_id=card.batch_id)
            return CardView(
                card.card_number, str(card.state), card.status, card.live, batch.label,
                _member(session, card).public_id, card.profile, card.key_version,
                card.issued_at.isoformat() if card.issued_at else None,
                card.expires_at.isoformat() if card.expires_at else None, card.reason,
                card_repo.card_events(session, card_id=card.id or 0))

    def suspend(self, card_number: str, *, reason: str = "") -> LifecycleChange:
        return self._change("suspend", card_number, reason)

    def resume(self, card_number: str, *, reason: str = "") -> LifecycleChange:
        return self._change("resume", card_number, reason)

    def lost(self, card_number: str, *, reason: str = "") -> LifecycleChange:
        return self._change("lost", card_number, reason)

    def revoke(self, card_number: str, *, reason: str = "") -> LifecycleChange:
        return self._change("revoke", card_number, reason)

    def replace(self, card_number: str, *, batch_label: str | None = None,
                reason: str = "") -> LifecycleChange:
        return self._replace("replace", card_number, batch_label, reason)

    def renew(self, card_number: str, *, batch_label: str | None = None, reason: str = "") -> LifecycleChange:
        return self._replace("renew", card_number, batch_label, reason)

    def revoked_card_numbers(self) -> list[str]:
        with self._journal.transaction() as session:
            return card_repo.revoked_card_numbers(session)

    # --- internals ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, card_number: str) -> Iterator[Session]:
        """One committed change; database failures leave the error tree as :class:`DatabaseUnavailable`
        (via the Journal) and constraint violations as :class:`Conflict`."""
        try:
            with self._journal.transaction() as session:
                yield session
        except IntegrityError as exc:
            raise Conflict(f"card {card_number}: the change conflicts with a concurrent one",
                           reason="concurrent_change",
                           hint="`cardsvc card show` gives the card's status now") from exc

    def _change(self, action: str, card_number: str, reason: str) -> LifecycleChange:
        with self._transaction(card_number) as session:
            card = card_repo.get_card(session, card_number=check_card_number(card_number))
            if action == "revoke" and card.state == JournalState.reserved:
                change = self._void_reservation(session, card, reason)
            else:
                change = self._set_status(session, card, action, reason)
            self._audit(session, change)  # the audit row commits with the change, or neither does
        return self._report(change)

    def _set_status(self, session: Session, card: Card, action: str, reason: str) -> LifecycleChange:
        before = self._check(card, action)
        to = _TO[action]
        card_repo.set_status(session, card=card, expected=before, status=to,
                             live=to is not CardStatus.revoked, actor=self._actor, action=action,
                             detail=reason, now=self._clock())
        return LifecycleChange(action, card.card_number, _member(session, card).public_id,
                               before.value, to.value, self._actor, reason)

    def _replace(self, action: str, card_number: str, batch_label: str | None,
                 reason: str) -> LifecycleChange:
        with self._transaction(card_number) as session:
            old = card_repo.get_card(session, card_number=check_card_number(card_number))
            before = self._check(old, action)
            card_repo.set_status(session, card=old, expected=before, status=CardStatus.revoked, live=False,
                                 actor=self._actor, action=action, detail=reason or action, now=self._clock())
            batch = (card_repo.get_batch(session, label=batch_label) if batch_label
                     else card_repo.get_batch_by_id(session, batch_id=old.batch_id))
            new = self._journal.reserve_for_member(session, batch, old.member_id, replaces=old)
            change = LifecycleChange(action, old.card_number, _member(session, old).public_id, before.value,
                                     CardStatus.revoked.value, self._actor, reason, new.card_number)
            self._audit(session, change)
        return self._report(change)

    def _void_reservation(self, session: Session, card: Card, reason: str) -> LifecycleChange:
        card_repo.move_state(session, card=card, expected=JournalState.reserved,
                             values={"state": JournalState.voided.value, "live": False, "station": None,
                                     "reason": reason[:200], "updated_at": self._clock()},
                             actor=self._actor, detail=reason or "revoked before writing")
        return LifecycleChange("revoke", card.card_number, _member(session, card).public_id, "reserved",
                               "voided", self._actor, reason)

    @staticmethod
    def _check(card: Card, action: str) -> CardStatus:
        if card.state != JournalState.issued or card.status is None:
            raise IssuanceError(f"card {card.card_number} is {card.state}, not issued: cannot {action}",
                                hint="`cardsvc batch recover` resolves cards still in the journal")
        status = CardStatus(card.status)
        if status not in _FROM[action]:
            raise IssuanceError(f"card {card.card_number} is {status.value}: cannot {action}")
        return status

    def _report(self, change: LifecycleChange) -> LifecycleChange:
        log.info("card %s: %s (%s → %s)%s", change.card_number, change.action, change.from_status,
                 change.to_status, f", new card {change.new_card_number}" if change.new_card_number else "")
        return change


def _member(session: Session, card: Card) -> Member:
    member = session.get(Member, card.member_id)
    if member is None:
        raise IssuanceError(f"card {card.card_number} names a missing member")
    return member
