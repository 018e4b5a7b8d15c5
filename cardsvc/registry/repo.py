"""Repository functions: keyword-only, they flush but never commit (services own transactions).

The ``*_bulk`` functions work on SQLAlchemy Core through the session's connection: the import path
moves thousands of rows per statement instead of one ORM object per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    LargeBinary,
    Table,
    any_,
    bindparam,
    delete,
    insert,
    text,
    update,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from cardsvc.errors import NotFound
from cardsvc.registry.models import (
    Category,
    Consent,
    Member,
    MemberCategory,
    MemberEvent,
    MembershipTransfer,
    Organisation,
    table_of,
)

MEMBER = table_of(Member)
LINK = table_of(MemberCategory)
EVENT = table_of(MemberEvent)


@dataclass(frozen=True, slots=True)
class ExistingMember:
    """What the importer needs to know about a member already in the database."""

    id: int
    public_id: str
    org_id: int
    name: str
    phone_index: bytes | None
    joined_on: dt.date | None
    categories: frozenset[int]


# --- organisations -----------------------------------------------------------------------------


def get_org(session: Session, *, code: str) -> Organisation:
    org = session.exec(select(Organisation).where(col(Organisation.code) == code)).first()
    if org is None:
        raise NotFound(f"no organisation with code {code!r}", hint="`cardsvc orgs list` shows the codes")
    return org


def find_org(session: Session, *, code: str) -> Organisation | None:
    return session.exec(select(Organisation).where(col(Organisation.code) == code)).first()


def list_orgs(session: Session) -> list[Organisation]:
    return list(session.exec(select(Organisation).order_by(col(Organisation.code))))


def save(session: Session, *, obj: Any) -> None:
    session.add(obj)
    session.flush()


# --- categories --------------------------------------------------------------------------------


def list_categories(session: Session) -> list[Category]:
    return list(session.exec(select(Category).order_by(col(Category.id))))


def member_category_codes(session: Session, *, member_id: int) -> tuple[str, ...]:
    query = (select(Category.code).join(MemberCategory, col(MemberCategory.category_id) == Category.id)
             .where(col(MemberCategory.member_id) == member_id).order_by(col(Category.id)))
    return tuple(session.exec(query))


def set_member_categories(session: Session, *, member_id: int, category_ids: Iterable[int]) -> None:
    conn = session.connection()
    conn.execute(delete(LINK).where(LINK.c.member_id == member_id))
    rows = [{"member_id": member_id, "category_id": c} for c in sorted(category_ids)]
    if rows:
        conn.execute(insert(LINK), rows)


# --- members -----------------------------------------------------------------------------------


def get_member(session: Session, *, public_id: str) -> Member:
    member = session.exec(select(Member).where(col(Member.public_id) == public_id)).first()
    if member is None:
        raise NotFound(f"no member {public_id}")
    return member


def find_member_by_index(session: Session, *, id_index: bytes) -> Member | None:
    return session.exec(select(Member).where(col(Member.id_index) == id_index)).first()


def list_members(session: Session, *, org_id: int | None, limit: int, offset: int) -> list[Member]:
    query = select(Member).order_by(col(Member.id)).limit(limit).offset(offset)
    if org_id is not None:
        query = query.where(col(Member.org_id) == org_id)
    return list(session.exec(query))


def members_needing_rekey(session: Session, *, current_version: int, limit: int) -> list[Member]:
    query = (select(Member).where(col(Member.id_sealed).is_not(None))
             .where(col(Member.key_version) != current_version).order_by(col(Member.id)).limit(limit))
    return list(session.exec(query))


def add_event(session: Session, *, member_id: int, action: str, detail: str = "") -> None:
    session.add(MemberEvent(member_id=member_id, action=action, detail=detail))
    session.flush()


def open_consents(session: Session, *, member_id: int, partner: str) -> list[Consent]:
    query = (select(Consent).where(col(Consent.member_id) == member_id).where(col(Consent.partner) == partner)
             .where(col(Consent.withdrawn_at).is_(None)))
    return list(session.exec(query))


def add_transfer(session: Session, *, transfer: MembershipTransfer) -> None:
    session.add(transfer)
    session.flush()


def members_by_index_bulk(session: Session, *, indexes: Sequence[bytes]) -> dict[bytes, ExistingMember]:
    """Members whose ID blind index is in ``indexes``, with their category ids."""
    if not indexes:
        return {}
    conn = session.connection()
    cols = (MEMBER.c.id, MEMBER.c.public_id, MEMBER.c.org_id, MEMBER.c.name, MEMBER.c.phone_index,
            MEMBER.c.joined_on, MEMBER.c.id_index)
    found = conn.execute(sa_select(*cols).where(_one_of(session, MEMBER.c.id_index, indexes))).all()
    links = _categories_of(session, member_ids=[row.id for row in found])
    return {row.id_index: ExistingMember(row.id, row.public_id, row.org_id, row.name, row.phone_index,
                                         row.joined_on, frozenset(links.get(row.id, ())))
            for row in found}


def _categories_of(session: Session, *, member_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    if not member_ids:
        return out
    query = sa_select(LINK.c.member_id, LINK.c.category_id).where(
        _one_of(session, LINK.c.member_id, member_ids))
    for member_id, category_id in session.connection().execute(query):
        out.setdefault(member_id, []).append(category_id)
    return out


def insert_members_bulk(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert member rows (Core dicts); returns public_id → id. PostgreSQL: sequence ids + COPY."""
    if not rows:
        return {}
    if not _is_postgres(session):  # executemany, then read the ids back by public id
        conn = session.connection()
        conn.execute(insert(MEMBER), list(rows))
        public_ids = [row["public_id"] for row in rows]
        query = sa_select(MEMBER.c.public_id, MEMBER.c.id).where(MEMBER.c.public_id.in_(public_ids))
        return {row.public_id: row.id for row in conn.execute(query)}
    ids = session.connection().execute(
        text("SELECT nextval(pg_get_serial_sequence('member', 'id')) FROM generate_series(1, :n)"),
        {"n": len(rows)}).scalars().all()
    with_ids = [{**row, "id": member_id} for row, member_id in zip(rows, ids, strict=True)]
    copy_rows(session, table=MEMBER, rows=with_ids)
    return {row["public_id"]: row["id"] for row in with_ids}


def copy_rows(session: Session, *, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bulk insert: ``COPY … FROM STDIN`` on PostgreSQL, an executemany INSERT elsewhere."""
    if not rows:
        return
    if not _is_postgres(session):
        session.connection().execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    raw: Any = session.connection().connection.driver_connection  # psycopg.Connection
    names = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _is_postgres(session: Session) -> bool:
    return session.connection().dialect.name == "postgresql"


def _one_of(session: Session, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (…)``; on PostgreSQL ``= ANY(array)`` (one parameter instead of thousands)."""
    if not _is_postgres(session):
        return column.in_(values)
    element_type = LargeBinary() if isinstance(values[0], bytes) else Integer()
    return column == any_(bindparam("values", list(values), type_=ARRAY(element_type)))


_UPDATABLE = ("name", "id_sealed", "phone_sealed", "phone_index", "joined_on", "key_version", "updated_at")


def update_members_bulk(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """Update name, sealed fields, joined_on, key_version, updated_at; each dict carries ``member_id``."""
    if not rows:
        return
    statement = (update(MEMBER).where(MEMBER.c.id == bindparam("b_member_id"))
                 .values({name: bindparam(f"b_{name}") for name in _UPDATABLE}))
    params = [{f"b_{key}": value for key, value in row.items()} for row in rows]
    session.connection().execute(statement, params)


def replace_categories_bulk(session: Session, *, links: Mapping[int, frozenset[int]],
                            replace: bool) -> None:
    conn = session.connection()
    if replace and links:
        conn.execute(delete(LINK).where(_one_of(session, LINK.c.member_id, list(links))))
    rows = [{"member_id": m, "category_id": c} for m, cats in links.items() for c in sorted(cats)]
    copy_rows(session, table=LINK, rows=rows)


def add_events_bulk(session: Session, *, member_ids: Iterable[int], action: str, detail: str,
                    at: dt.datetime) -> None:
    rows = [{"member_id": m, "action": action, "detail": detail, "at": at} for m in member_ids]
    copy_rows(session, table=EVENT, rows=rows)
