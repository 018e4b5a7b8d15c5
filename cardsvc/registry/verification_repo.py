"""Verification repository functions: keyword-only, they flush but never commit.

The race-prone steps are single conditional statements, correct under concurrency on SQLite (one
writer at a time) and PostgreSQL (read committed: a blocked ``UPDATE`` re-checks its ``WHERE`` on
the row version that won):

* :func:`advance_sun_counter` — insert-if-absent, then ``UPDATE … SET last=:c WHERE last < :c``;
* :func:`take_quota` — ``UPDATE programme SET used = used + 1 WHERE used < quota``;
* :func:`consume_challenge` — ``UPDATE challenge SET used_at=:now WHERE used_at IS NULL AND …``;
* :data:`LOCK_HEAD` — ``UPDATE audit_head SET size = size + n … RETURNING`` first, so concurrent
  appenders queue on one row and the chain never forks (``cardsvc.verification.store.append_events``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, delete, false, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from cardsvc.errors import NotFound
from cardsvc.registry.cards import Card
from cardsvc.registry.models import Category, Member, MemberCategory, Organisation, table_of
from cardsvc.registry.verification_models import (
    ApiClient,
    AuditHead,
    AuditLogRow,
    Challenge,
    Checkin,
    PartnerBase,
    Programme,
    ProgrammeMember,
    ServiceItem,
    ServicePoint,
    ServiceRecord,
    SunCounter,
)

CLIENT = table_of(ApiClient)
AUDIT = table_of(AuditLogRow)
HEAD = table_of(AuditHead)
SUN = table_of(SunCounter)
CHALLENGE = table_of(Challenge)
PROGRAMME = table_of(Programme)
PROGRAMME_MEMBER = table_of(ProgrammeMember)
CHECKIN = table_of(Checkin)
RECORD = table_of(ServiceRecord)
ITEM = table_of(ServiceItem)
POINT = table_of(ServicePoint)
BASE = table_of(PartnerBase)
CARD = table_of(Card)
MEMBER = table_of(Member)
ORG = table_of(Organisation)
CATEGORY = table_of(Category)
MEMBER_CATEGORY = table_of(MemberCategory)

_CARD_WITH_MEMBER = (
    sa_select(CARD.c.card_number, CARD.c.profile, CARD.c.key_version, CARD.c.state, CARD.c.status,
              CARD.c.credential, MEMBER.c.id.label("member_db_id"), MEMBER.c.public_id, MEMBER.c.name,
              MEMBER.c.status.label("member_status"), MEMBER.c.id_sealed, ORG.c.name.label("org_name"),
              CARD.c.expires_at)
    .join(MEMBER, MEMBER.c.id == CARD.c.member_id).join(ORG, ORG.c.id == MEMBER.c.org_id))


# Hot-path statements are built once with bind parameters: building one per call cost more than
# running it (cache-key generation, coercions), see docs/api.md "Performance". Public: the
# verification hot path runs them on the DBAPI cursor (cardsvc.verification.prepared).
CARD_BY_NUMBER = _CARD_WITH_MEMBER.where(CARD.c.card_number == bindparam("card_number"))
CARD_BY_UID = _CARD_WITH_MEMBER.where(CARD.c.uid_hash == bindparam("uid_hash"))
_CLIENT_BY_ID = sa_select(CLIENT).where(CLIENT.c.client_id == bindparam("client_id"))
PROGRAMMES_OF_BASE = (sa_select(PROGRAMME).where(PROGRAMME.c.base_code == bindparam("base_code"))
                      .order_by(PROGRAMME.c.code))


def _execute(session: Session, statement: Any, params: Any = None) -> Any:
    return session.connection().execute(statement, params)


def _insert_ignore(session: Session, table: Table, values: dict[str, Any], keys: list[str]) -> None:
    """``INSERT … ON CONFLICT DO NOTHING`` on the primary key (SQLite and PostgreSQL)."""
    dialect = session.connection().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    _execute(session, module.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys))


# --- clients -----------------------------------------------------------------------------------


def add_client(session: Session, *, client: ApiClient) -> None:
    session.add(client)
    session.flush()


def get_client(session: Session, *, client_id: str) -> ApiClient | None:
    return session.get(ApiClient, client_id)


def client_row(session: Session, *, client_id: str) -> Any:
    """The client's columns as one Core row (the per-request authentication lookup), or ``None``."""
    return _execute(session, _CLIENT_BY_ID, {"client_id": client_id}).first()


# One client, for the group-committed hot path (an expanding IN is compiled at every execution).
LIVE_CLIENT = sa_select(CLIENT.c.client_id).where(CLIENT.c.client_id == bindparam("client_id"),
                                                  CLIENT.c.revoked == false())


def revoke_client(session: Session, *, client_id: str) -> ApiClient:
    result = _execute(session, update(CLIENT).where(CLIENT.c.client_id == client_id).values(revoked=True))
    if result.rowcount != 1:
        raise NotFound(f"no client {client_id}")
    client = session.get(ApiClient, client_id)
    assert client is not None  # noqa: S101 - just updated
    session.refresh(client)
    return client


def list_clients(session: Session) -> list[ApiClient]:
    query = sa_select(ApiClient).order_by(CLIENT.c.created_at, CLIENT.c.client_id)
    return list(session.scalars(query))


def card_with_member(session: Session, *, card_number: str | None = None,
                     uid_hash: bytes | None = None) -> Any:
    """One Core row: the card's verification columns with its member and organisation (hot path)."""
    if card_number is not None:
        return _execute(session, CARD_BY_NUMBER, {"card_number": card_number}).first()
    return _execute(session, CARD_BY_UID, {"uid_hash": uid_hash}).first()


# --- audit -------------------------------------------------------------------------------------


# Public: the audit append runs them on the DBAPI cursor (cardsvc.verification.prepared).
LOCK_HEAD = (update(HEAD).where(HEAD.c.id == 1).values(size=HEAD.c.size + bindparam("count"))
             .returning(HEAD.c.size, HEAD.c.last_hash))
MOVE_HEAD = update(HEAD).where(HEAD.c.id == 1).values(last_hash=bindparam("last_hash"))
INSERT_AUDIT = insert(AUDIT).values({column.name: bindparam(column.name) for column in AUDIT.columns})


def audit_head(session: Session) -> tuple[int, bytes]:
    """The committed head, unlocked (for verification): ``(size, last row hash)``."""
    row = _execute(session, sa_select(HEAD.c.size, HEAD.c.last_hash).where(HEAD.c.id == 1)).first()
    if row is None:
        raise NotFound("the audit head row is missing (migration 0003 not applied?)")
    return int(row[0]), bytes(row[1])


def audit_rows(session: Session, *, start: int = 0, limit: int | None = None) -> list[AuditLogRow]:
    query = sa_select(AuditLogRow).where(AUDIT.c.seq >= start).order_by(AUDIT.c.seq)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def audit_count(session: Session) -> int:
    return int(_execute(session, sa_select(func.count()).select_from(AUDIT)).scalar_one())


def recent_ok_verification(session: Session, *, actor: str, subject: str, since: dt.datetime) -> bool:
    """Did ``actor`` verify card ``subject`` successfully since ``since`` (per the audit log)?"""
    query = (sa_select(AUDIT.c.seq).where(AUDIT.c.subject == subject, AUDIT.c.actor == actor,
                                          AUDIT.c.outcome == "ok", AUDIT.c.event_type.like("verify.%"),
                                          AUDIT.c.ts >= since).limit(1))
    return _execute(session, query).first() is not None


# --- SUN counters and challenges ------------------------------------------------------------------


# SUN_SEED / SUN_ADVANCE are public: the verification hot path runs them on the DBAPI cursor.
_SUN_SEED_VALUES = {"card_number": bindparam("card"), "last": -1, "updated_at": bindparam("now")}
SUN_SEED = {name: module.insert(SUN).values(**_SUN_SEED_VALUES).on_conflict_do_nothing(
    index_elements=["card_number"]) for name, module in (("sqlite", sqlite), ("postgresql", postgresql))}
SUN_ADVANCE = (update(SUN).where(SUN.c.card_number == bindparam("card"),
                                 SUN.c.last < bindparam("counter"))
               .values(last=bindparam("counter"), updated_at=bindparam("now")))


def advance_sun_counter(session: Session, *, card_number: str, counter: int, now: dt.datetime) -> bool:
    """Compare-and-set: move the card's last counter to ``counter`` only if it grows."""
    params = {"card": card_number, "counter": counter, "now": now}
    _execute(session, SUN_SEED[session.connection().dialect.name], params)
    return bool(_execute(session, SUN_ADVANCE, params).rowcount == 1)


def add_challenge(session: Session, *, challenge: Challenge) -> None:
    session.add(challenge)
    session.flush()


def consume_challenge(session: Session, *, nonce: bytes, client_id: str, now: dt.datetime) -> bool:
    """Mark the challenge used if it is this client's, unused and unexpired (one winner)."""
    statement = (update(CHALLENGE)
                 .where(CHALLENGE.c.nonce == nonce, CHALLENGE.c.client_id == client_id,
                        CHALLENGE.c.used_at.is_(None), CHALLENGE.c.expires_at > now)
                 .values(used_at=now))
    return bool(_execute(session, statement).rowcount == 1)


def get_challenge(session: Session, *, nonce: bytes) -> Challenge | None:
    return session.get(Challenge, nonce)


def purge_challenges(session: Session, *, expired_before: dt.datetime, limit: int) -> int:
    """Delete up to ``limit`` challenges that expired before ``expired_before``; how many went."""
    oldest = (sa_select(CHALLENGE.c.nonce).where(CHALLENGE.c.expires_at < expired_before)
              .order_by(CHALLENGE.c.expires_at).limit(limit))
    return int(_execute(session, delete(CHALLENGE).where(CHALLENGE.c.nonce.in_(oldest))).rowcount)


# --- service points ------------------------------------------------------------------------------


def list_service_items(session: Session) -> list[ServiceItem]:
    return list(session.scalars(sa_select(ServiceItem).order_by(ITEM.c.sort, ITEM.c.code)))


def add_service_record(session: Session, *, record: ServiceRecord) -> ServiceRecord:
    session.add(record)
    session.flush()
    return record


def find_service_record(session: Session, *, client_id: str, idempotency_key: str) -> ServiceRecord | None:
    query = sa_select(ServiceRecord).where(RECORD.c.client_id == client_id,
                                           RECORD.c.idempotency_key == idempotency_key)
    return session.scalars(query).first()


def recent_services(session: Session, *, member_id: int,
                    limit: int = 5) -> list[tuple[dt.datetime, str, str]]:
    """The member's latest services: (recorded at, UTC; point name, item name)."""
    query = (sa_select(RECORD.c.recorded_at, POINT.c.name, ITEM.c.name)
             .join(POINT, POINT.c.code == RECORD.c.service_point_code)
             .join(ITEM, ITEM.c.code == RECORD.c.item_code)
             .where(RECORD.c.member_id == member_id)
             .order_by(RECORD.c.recorded_at.desc(), RECORD.c.id.desc()).limit(limit))
    return [(at, str(point), str(item)) for at, point, item in _execute(session, query)]


def service_stats(session: Session, *, point: str | None,
                  month: str | None) -> list[tuple[str, str, str, int]]:
    """Counts per (point, item, month), optionally for one point and/or one month."""
    query = sa_select(RECORD.c.service_point_code, RECORD.c.item_code, RECORD.c.month, func.count())
    if point is not None:
        query = query.where(RECORD.c.service_point_code == point)
    if month is not None:
        query = query.where(RECORD.c.month == month)
    query = query.group_by(RECORD.c.service_point_code, RECORD.c.item_code, RECORD.c.month).order_by(
        RECORD.c.month, RECORD.c.service_point_code, RECORD.c.item_code)
    return [(str(p), str(i), str(m), int(n)) for p, i, m, n in _execute(session, query)]


# --- recuperation ------------------------------------------------------------------------------


def get_programme(session: Session, *, code: str) -> Programme:
    programme = session.get(Programme, code)
    if programme is None:
        raise NotFound(f"no programme {code}", reason="unknown_programme")
    return programme


def programmes_of_base(session: Session, *, base_code: str) -> list[Any]:
    """The base's programmes as Core rows (same attribute names as :class:`Programme`; read-only)."""
    return list(_execute(session, PROGRAMMES_OF_BASE, {"base_code": base_code}))


# Public: the partner view's eligibility runs these on the DBAPI cursor (verification.recuperation).
MEMBER_CATEGORIES = (sa_select(CATEGORY.c.code)
                     .join(MEMBER_CATEGORY, MEMBER_CATEGORY.c.category_id == CATEGORY.c.id)
                     .where(MEMBER_CATEGORY.c.member_id == bindparam("member_id")))


IN_NAMED_LIST = sa_select(PROGRAMME_MEMBER.c.member_id).where(
    PROGRAMME_MEMBER.c.programme_code == bindparam("programme"),
    PROGRAMME_MEMBER.c.member_id == bindparam("member"))


def take_quota(session: Session, *, programme_code: str) -> bool:
    """Take one place of the programme's quota, if one is left (one winner per place)."""
    statement = (update(PROGRAMME).where(PROGRAMME.c.code == programme_code,
                                         PROGRAMME.c.used < PROGRAMME.c.quota)
                 .values(used=PROGRAMME.c.used + 1))
    return bool(_execute(session, statement).rowcount == 1)


def add_checkin(session: Session, *, checkin: Checkin) -> Checkin:
    session.add(checkin)
    session.flush()
    return checkin


def find_checkin(session: Session, *, programme_code: str, idempotency_key: str | None = None,
                 member_id: int | None = None) -> Checkin | None:
    query = sa_select(Checkin).where(CHECKIN.c.programme_code == programme_code)
    if idempotency_key is not None:
        query = query.where(CHECKIN.c.idempotency_key == idempotency_key)
    if member_id is not None:
        query = query.where(CHECKIN.c.member_id == member_id)
    return session.scalars(query).first()


def get_checkin(session: Session, *, checkin_id: int) -> Checkin:
    checkin = session.get(Checkin, checkin_id)
    if checkin is None:
        raise NotFound(f"no check-in {checkin_id}", reason="unknown_checkin")
    return checkin


def check_out(session: Session, *, checkin_id: int, now: dt.datetime) -> bool:
    statement = (update(CHECKIN).where(CHECKIN.c.id == checkin_id, CHECKIN.c.checked_out_at.is_(None))
                 .values(checked_out_at=now))
    return bool(_execute(session, statement).rowcount == 1)


def eligible_card_numbers(session: Session, *, card_query: Any) -> list[str]:
    """Card numbers selected by ``card_query`` (a Core select of one card-number column)."""
    return [str(n) for n in _execute(session, card_query).scalars()]


def save_all(session: Session, *, objects: Sequence[Any]) -> None:
    for obj in objects:
        session.merge(obj)
    session.flush()
