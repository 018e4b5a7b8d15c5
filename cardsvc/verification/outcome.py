"""What a verification answers (OK / NOK / CHECK + reason) and the member facts behind the views.

A NOK is an outcome, not an error: routes answer it with HTTP 200. Errors (4xx) are kept for input
that is not a verification at all — malformed text, unknown cards, bad challenges.

Live status rules, after the cryptography passed (first failing rule decides):

1. the card is issued (journal state) — else NOK ``card_not_issued``;
2. the card has not expired (``expires_at`` after now) — else NOK ``expired``, as a QR whose
   credential has expired (a phone or reader tap checks no credential validity, so this rule does);
3. its lifecycle status is active — else NOK ``card_<status>`` (suspended, lost, revoked);
4. the member is active — ``suspended`` gives CHECK ``member_suspended`` (a person must look),
   ``left`` / ``erased`` give NOK ``member_inactive``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from cardsvc.errors import NotFound
from cardsvc.registry.cards import Card, CardStatus, JournalState
from cardsvc.registry.models import Member, MemberStatus, Organisation
from cardsvc.verification.audit import Outcome


class Verdict(StrEnum):
    OK = "OK"
    NOK = "NOK"
    CHECK = "CHECK"

    @property
    def audit_outcome(self) -> Outcome:
        return {Verdict.OK: Outcome.ok, Verdict.NOK: Outcome.nok, Verdict.CHECK: Outcome.check}[self]


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """The member behind a verified card, as loaded for building a role's view (never logged)."""

    member_db_id: int
    public_id: str
    name: str
    organisation: str
    status: MemberStatus
    id_sealed: bytes | None


@dataclass(frozen=True, slots=True)
class Verification:
    """One verification's answer; ``member`` is set once the card is known and genuine."""

    verdict: Verdict
    reason: str | None
    method: str
    card_number: str | None
    card_status: str | None = None
    member: MemberFacts | None = None
    at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


@dataclass(frozen=True, slots=True)
class LiveCard:
    """A card's verification columns and its member, loaded in one query (the verify hot path)."""

    card_number: str
    profile: str
    key_version: int
    state: str
    status: str | None
    credential: bytes | None
    member: MemberFacts
    expires_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: Any) -> LiveCard:
        facts = MemberFacts(row.member_db_id, row.public_id, row.name, row.org_name or "",
                            MemberStatus(row.member_status), row.id_sealed)
        return cls(row.card_number, row.profile, row.key_version, row.state, row.status,
                   None if row.credential is None else bytes(row.credential), facts, row.expires_at)


def member_facts(session: Session, card: Card) -> MemberFacts:
    member = session.get(Member, card.member_id)
    if member is None or member.id is None:
        raise NotFound(f"card {card.card_number} names no member", reason="unknown_member")
    org = session.get(Organisation, member.org_id)
    return MemberFacts(member.id, member.public_id, member.name, org.name if org else "",
                       MemberStatus(member.status), member.id_sealed)


def live_status(card: Card | LiveCard, facts: MemberFacts, *, now: dt.datetime) -> tuple[Verdict, str | None]:
    """Rules 1-4 of the module docstring."""
    if card.state != JournalState.issued:
        return Verdict.NOK, "card_not_issued"
    if card.expires_at is not None and card.expires_at <= now:
        return Verdict.NOK, "expired"
    if card.status != CardStatus.active:
        status = CardStatus(card.status).value if card.status else "unknown"
        return Verdict.NOK, f"card_{status}"
    if facts.status is MemberStatus.suspended:
        return Verdict.CHECK, "member_suspended"
    if facts.status is not MemberStatus.active:
        return Verdict.NOK, "member_inactive"
    return Verdict.OK, None
