"""What each role gets back from a verification: the allow-listed member view.

The facts are loaded once; this module adds what a role's allow-list names (recent services for
service points, dated by their local day in ``tz``; eligibility and quota for partners; the ID
number for admin and for the derived ``id_last4``) and hands the dict to
:func:`~cardsvc.verification.roles.present_member`, which keeps only the allowed keys and masks
anything ID- or phone-shaped for non-admins.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from sqlmodel import Session

from cardsvc.errors import PiiIntegrityError
from cardsvc.localtime import local_date
from cardsvc.logging import get_logger
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.pii import PiiCipher
from cardsvc.verification.outcome import MemberFacts, Verdict, Verification
from cardsvc.verification.recuperation import partner_eligibility
from cardsvc.verification.roles import MEMBER_FIELDS, Role, present_member
from cardsvc.verification.tokens import ClientRecord

log = get_logger(__name__)

# What a caller without a staff login (the phone-tap page) may learn.
ANONYMOUS_FIELDS = frozenset({"masked_name"})


def _wants(role: Role, key: str) -> bool:
    allowed = MEMBER_FIELDS[role]
    return allowed is None or key in allowed


def _id_number(facts: MemberFacts, cipher: PiiCipher | None) -> str | None:
    if cipher is None or facts.id_sealed is None:
        return None
    try:
        return cipher.open(facts.id_sealed, record=facts.public_id, field="id_number")
    except PiiIntegrityError:
        log.warning("ID number of member %s does not open", facts.public_id)
        return None


def base_view(facts: MemberFacts) -> dict[str, Any]:
    return {"member_id": facts.public_id, "name": facts.name, "organisation": facts.organisation,
            "membership_status": facts.status.value}


def member_view(session: Session, result: Verification, client: ClientRecord,
                cipher: PiiCipher | None, *, tz: tzinfo) -> dict[str, Any] | None:
    """The member as ``client``'s role may see it; ``None`` unless the answer is OK or CHECK (a NOK
    — lost, revoked, replayed — tells nobody whose card it is)."""
    facts = result.member
    if facts is None or result.verdict is Verdict.NOK:
        return None
    role = client.role
    view = base_view(facts)
    view["card_status"] = result.card_status
    if _wants(role, "id_last4") or _wants(role, "id_number"):
        id_number = _id_number(facts, cipher)
        if id_number is not None:
            view["id_number"] = id_number
    if _wants(role, "recent_services"):
        view["recent_services"] = recent_services(session, facts.member_db_id, tz)
    if role is Role.partner and client.partner_base_id is not None:
        view.update(partner_eligibility(session, facts, client.partner_base_id, result, tz))
    return present_member(view, role)


def recent_services(session: Session, member_id: int, tz: tzinfo) -> list[dict[str, str]]:
    """The member's latest services, each dated by its local day in ``tz`` (stored instants are UTC)."""
    return [{"date": local_date(at, tz).isoformat(), "service_point": point, "item": item}
            for at, point, item in repo.recent_services(session, member_id=member_id)]


def anonymous_view(result: Verification) -> dict[str, Any] | None:
    """The phone-tap page without a login: the masked name only."""
    if result.member is None or result.verdict is Verdict.NOK:
        return None
    full = present_member(base_view(result.member), Role.partner)
    return {k: v for k, v in full.items() if k in ANONYMOUS_FIELDS}
