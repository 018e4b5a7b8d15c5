"""Recuperation at partner bases: eligibility, check-ins (idempotent, quota-safe), check-out, offline.

Check-in checklist (the first failure refuses with 409 and a reason; nothing is recorded):

1. the programme exists (404) and belongs to the partner's base (403 — another partner's programme);
2. an earlier check-in with the same Idempotency-Key is answered again (same card, named by the
   credential's signed claims: a card replaced or revoked since still gets its stored answer) or
   refused (``idempotency_key_reused``);
3. an offline check-in's time has a timezone (``checked_in_at_naive``), is not ahead of the server
   by more than :data:`OFFLINE_CLOCK_SKEW` (``checked_in_at_future``) and not older than the
   service's ``offline_max_age`` (``checked_in_at_too_old``, setting ``offline_checkin_max_days``):
   the base's clock decides eligibility, so it may not backdate into an ended programme;
4. the credential verifies and is the card's current one, card and member live (reason as verify);
5. the member is eligible: programme running on the check-in's local date (the service's ``zone``,
   ``CARDSVC_TIMEZONE``), on the named list or in an eligible category;
6. not checked in to this programme before (``already_checked_in``; a unique index backs it);
7. one place of the quota is taken by a conditional ``UPDATE`` (``quota_exhausted``);
8. the check-in and its audit row commit together.

Offline: the partner downloads the programme's pseudonymous list — ``HMAC-SHA256(K_p, card number)``
truncated to 16 bytes, with ``K_p = HMAC-SHA256(list secret, tag ‖ programme code)`` handed to the
partner — verifies credentials against the trust bundle, and later syncs its check-ins; each item
goes through the same checklist, so a sync is idempotent and conflicts come back per item.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from cardsvc.credential.qr import from_qr_text
from cardsvc.errors import (
    Conflict,
    CredentialVerificationError,
    MalformedCredential,
    NotConfigured,
    NotFound,
    PermissionDenied,
)
from cardsvc.localtime import local_date
from cardsvc.logging import get_logger
from cardsvc.registry import card_repo
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.cards import Card, CardStatus, JournalState
from cardsvc.registry.models import Category, Member, MemberCategory, MemberStatus, table_of
from cardsvc.registry.verification_models import Checkin, Programme, ProgrammeMember
from cardsvc.verification.audit import AuditEvent, Outcome
from cardsvc.verification.checks import check_credential, same_credential
from cardsvc.verification.outcome import MemberFacts, Verdict, Verification, live_status, member_facts
from cardsvc.verification.prepared import PreparedRead
from cardsvc.verification.roles import Role
from cardsvc.verification.service import VerificationService
from cardsvc.verification.store import append_event
from cardsvc.verification.tokens import ClientRecord

log = get_logger(__name__)
# The partner view's reads, on the DBAPI cursor (same statements as the repo's, a fraction of the CPU).
PROGRAMMES_OF_BASE = PreparedRead(repo.PROGRAMMES_OF_BASE)
MEMBER_CATEGORIES = PreparedRead(repo.MEMBER_CATEGORIES)
IN_NAMED_LIST = PreparedRead(repo.IN_NAMED_LIST)

LIST_TAG = b"cardsvc eligibility list v1\x00"
OFFLINE_CLOCK_SKEW = dt.timedelta(minutes=5)  # a base's clock may run this much ahead of the server
PSEUDONYM_SIZE = 16


@dataclass(frozen=True, slots=True)
class CheckinRequest:
    programme: str
    qr_text: str
    idempotency_key: str
    checked_in_at: dt.datetime | None = None  # offline sync: when it happened at the base
    source: str = "online"


@dataclass(frozen=True, slots=True)
class CheckinResult:
    checkin_id: int
    programme: str
    card_number: str
    checked_in_at: dt.datetime
    replayed: bool
    quota_left: int


def programme_for(session: Session, client: ClientRecord, code: str) -> Programme:
    """The programme, if this client may act on it (partners: their own base's only)."""
    programme = repo.get_programme(session, code=code)
    if client.role is Role.partner and programme.base_code != client.partner_base_id:
        raise PermissionDenied(f"programme {code} belongs to another partner base")
    return programme


def ineligibility(session: Session, programme: Programme | Any, member_id: int,
                  today: dt.date) -> str | None:
    """Why the member may not join (a reason code), or ``None`` when eligible."""
    if not programme.starts_on <= today <= programme.ends_on:
        return "programme_not_running"
    if programme.named_list:
        listed = IN_NAMED_LIST.first(session, programme=programme.code, member=member_id)
        return None if listed is not None else "not_on_list"
    wanted = {c for c in programme.categories.split(",") if c}
    if wanted and not wanted & {row.code for row in MEMBER_CATEGORIES.all(session, member_id=member_id)}:
        return "category"
    return None


def partner_eligibility(session: Session, facts: MemberFacts, base_code: str,
                        result: Verification, tz: dt.tzinfo) -> dict[str, Any]:
    """Eligibility and quota left for each programme of the partner's base (partner view fields);
    "running" is decided on the local date (``tz``) of the verification."""
    today = local_date(result.at or dt.datetime.now(dt.UTC), tz)
    live = result.verdict is Verdict.OK
    eligibility: dict[str, bool] = {}
    quota: dict[str, int] = {}
    for programme in PROGRAMMES_OF_BASE.all(session, base_code=base_code):
        reason = ineligibility(session, programme, facts.member_db_id, today)
        eligibility[programme.code] = live and reason is None
        quota[programme.code] = max(0, programme.quota - programme.used)
    return {"eligibility": eligibility, "quota": quota}


def _replay(existing: Checkin, programme: Programme, card_number: str) -> CheckinResult:
    if existing.card_number != card_number:
        raise Conflict("this Idempotency-Key was used for another card", reason="idempotency_key_reused")
    return _result(existing, programme, replayed=True)


def _result(checkin: Checkin, programme: Programme, *, replayed: bool) -> CheckinResult:
    assert checkin.id is not None  # noqa: S101 - flushed rows have ids
    return CheckinResult(checkin.id, programme.code, checkin.card_number, checkin.checked_in_at, replayed,
                         max(0, programme.quota - programme.used))


def _claimed_card_number(svc: VerificationService, qr_text: str, now: dt.datetime) -> str:
    """The card number a credential's verified claims name (whether or not it is still the card's)."""
    try:
        return check_credential(svc.trust, from_qr_text(qr_text), now).card_number
    except CredentialVerificationError as exc:
        raise Conflict("the credential does not verify", reason=exc.reason) from None


def offline_time(at: dt.datetime | None, now: dt.datetime, max_age: dt.timedelta) -> dt.datetime:
    """When a check-in counts: now, or an offline one's own time within the bounds (rule 3)."""
    if at is None:
        return now
    if at.tzinfo is None or at.utcoffset() is None:
        raise Conflict("an offline check-in time needs a timezone", reason="checked_in_at_naive")
    if at > now + OFFLINE_CLOCK_SKEW:
        raise Conflict("the offline check-in time is in the future", reason="checked_in_at_future")
    if at < now - max_age:
        raise Conflict("the offline check-in is too old to sync", reason="checked_in_at_too_old")
    return min(at, now)


def _live_card(session: Session, svc: VerificationService, qr_text: str, now: dt.datetime) -> Card:
    raw = from_qr_text(qr_text)
    try:
        claims = check_credential(svc.trust, raw, now)
        card = card_repo.get_card(session, card_number=claims.card_number)
        same_credential(raw, card.credential)
    except CredentialVerificationError as exc:
        raise Conflict("the credential does not verify", reason=exc.reason) from None
    return card


def check_in(session: Session, svc: VerificationService, client: ClientRecord,
             request: CheckinRequest) -> CheckinResult:
    """The check-in checklist of the module docstring, in one transaction."""
    now = svc.clock()
    programme = programme_for(session, client, request.programme)
    existing = repo.find_checkin(session, programme_code=programme.code,
                                 idempotency_key=request.idempotency_key)
    if existing is not None:
        return _replay(existing, programme, _claimed_card_number(svc, request.qr_text, now))
    at = offline_time(request.checked_in_at, now, svc.offline_max_age)
    card = _live_card(session, svc, request.qr_text, now)
    facts = member_facts(session, card)
    verdict, reason = live_status(card, facts, now=now)
    if verdict is not Verdict.OK:
        raise Conflict("card or member is not live", reason=reason or "not_live")
    _admit(session, programme, facts.member_db_id, local_date(at, svc.zone))
    checkin = repo.add_checkin(session, checkin=Checkin(
        programme_code=programme.code, member_id=facts.member_db_id, card_number=card.card_number,
        client_id=client.client_id, idempotency_key=request.idempotency_key, source=request.source,
        checked_in_at=at))
    session.refresh(programme)
    append_event(session, AuditEvent(event_type="checkin.create", actor=client.client_id,
                                     subject=card.card_number, outcome=Outcome.ok, reason=request.source,
                                     timestamp=now))
    return _result(checkin, programme, replayed=False)


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    """One offline item's answer: ``accepted`` / ``duplicate`` (with the check-in) or ``conflict``."""

    idempotency_key: str
    status: str
    reason: str | None = None
    checkin_id: int | None = None


def check_in_committed(svc: VerificationService, client: ClientRecord,
                       request: CheckinRequest) -> CheckinResult:
    """:func:`check_in` in its own transaction; a concurrent duplicate that lost the race is run
    again, and so answered like a retry (or refused as the winner's duplicate). It can lose on a
    unique index, or — under READ COMMITTED, when the winner commits between this transaction's
    Idempotency-Key lookup and its member lookup — as ``already_checked_in``."""
    try:
        return svc.db.transact(lambda s: check_in(s, svc, client, request))
    except IntegrityError:
        pass
    except Conflict as exc:
        if exc.reason != "already_checked_in":
            raise
    return svc.db.transact(lambda s: check_in(s, svc, client, request))


def sync(svc: VerificationService, client: ClientRecord,
         requests: Sequence[CheckinRequest]) -> list[SyncAnswer]:
    """Offline check-ins, each committed and answered on its own; another base's programme raises."""
    return [_sync_one(svc, client, request) for request in requests]


def _sync_one(svc: VerificationService, client: ClientRecord, request: CheckinRequest) -> SyncAnswer:
    key = request.idempotency_key
    try:
        result = check_in_committed(svc, client, request)
    except PermissionDenied:
        raise
    except (Conflict, NotFound, MalformedCredential) as exc:
        return SyncAnswer(key, "conflict", exc.reason or exc.code)
    return SyncAnswer(key, "duplicate" if result.replayed else "accepted", checkin_id=result.checkin_id)


def _admit(session: Session, programme: Programme, member_id: int, day: dt.date) -> None:
    reason = ineligibility(session, programme, member_id, day)
    if reason is not None:
        raise Conflict("the member is not eligible for this programme", reason=reason)
    if repo.find_checkin(session, programme_code=programme.code, member_id=member_id) is not None:
        raise Conflict("the member is already checked in to this programme", reason="already_checked_in")
    if not repo.take_quota(session, programme_code=programme.code):
        raise Conflict("the programme's quota is used up", reason="quota_exhausted")


def check_out(session: Session, svc: VerificationService, client: ClientRecord, checkin_id: int) -> Checkin:
    checkin = repo.get_checkin(session, checkin_id=checkin_id)
    programme_for(session, client, checkin.programme_code)
    now = svc.clock()
    if not repo.check_out(session, checkin_id=checkin_id, now=now):
        raise Conflict("already checked out", reason="already_checked_out")
    append_event(session, AuditEvent(event_type="checkin.checkout", actor=client.client_id,
                                     subject=checkin.card_number, outcome=Outcome.ok, reason="checked_out",
                                     timestamp=now))
    session.refresh(checkin)
    return checkin


# --- offline ------------------------------------------------------------------------------------


def programme_list_key(secret: bytes | None, programme_code: str) -> bytes:
    if not secret:
        log.warning("no eligibility-list secret loaded: offline lists are unavailable")
        raise NotConfigured
    return hmac.new(secret, LIST_TAG + programme_code.encode(), hashlib.sha256).digest()


def pseudonym(list_key: bytes, card_number: str) -> bytes:
    """How a card number appears in an offline list (the partner computes it from a scanned card)."""
    return hmac.new(list_key, card_number.encode("ascii"), hashlib.sha256).digest()[:PSEUDONYM_SIZE]


CARD = table_of(Card)
MEMBER = table_of(Member)
LISTED = table_of(ProgrammeMember)
MEMBER_CATEGORY = table_of(MemberCategory)
CATEGORY = table_of(Category)


def eligible_card_numbers(session: Session, programme: Programme) -> list[str]:
    """Live cards of active members eligible for ``programme`` (dates are checked at check-in)."""
    query = (select(CARD.c.card_number).join(MEMBER, MEMBER.c.id == CARD.c.member_id)
             .where(CARD.c.state == JournalState.issued.value, CARD.c.status == CardStatus.active.value,
                    CARD.c.live.is_(True), MEMBER.c.status == MemberStatus.active.value))
    if programme.named_list:
        listed = select(LISTED.c.member_id).where(LISTED.c.programme_code == programme.code)
        query = query.where(MEMBER.c.id.in_(listed))
    elif wanted := [c for c in programme.categories.split(",") if c]:
        in_category = (select(MEMBER_CATEGORY.c.member_id)
                       .join(CATEGORY, and_(CATEGORY.c.id == MEMBER_CATEGORY.c.category_id,
                                            CATEGORY.c.code.in_(wanted))))
        query = query.where(MEMBER.c.id.in_(in_category))
    return repo.eligible_card_numbers(session, card_query=query.order_by(CARD.c.card_number))


@dataclass(frozen=True, slots=True)
class OfflineList:
    programme: Programme
    list_key: bytes
    entries: Sequence[bytes]


def offline_list(session: Session, client: ClientRecord, code: str, secret: bytes | None) -> OfflineList:
    programme = programme_for(session, client, code)
    key = programme_list_key(secret, programme.code)
    entries = sorted(pseudonym(key, n) for n in eligible_card_numbers(session, programme))
    return OfflineList(programme, key, entries)
