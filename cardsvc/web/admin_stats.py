"""The admin dashboard's counts: cards issued per batch and per month, services per point and per
item, recuperation check-ins per base. Plain ``GROUP BY`` reads over the tables the workflows write
(no copy of their logic); each answer is a list of :class:`Bar` ready for a chart. Months are local
(``tz``, the settings' ``CARDSVC_TIMEZONE``): a card issued at 07:30 on 1 December in Shanghai counts
in December.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from cardsvc.localtime import local_month
from cardsvc.registry.cards import Batch, Card, JournalState
from cardsvc.registry.verification_models import (
    Checkin,
    PartnerBase,
    Programme,
    ServiceItem,
    ServicePoint,
    ServiceRecord,
)
from cardsvc.verification.db import Database

MONTHS_SHOWN = 12


@dataclass(frozen=True, slots=True)
class Bar:
    key: str
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    cards_per_batch: list[Bar]
    cards_per_month: list[Bar]
    services_per_point: list[Bar]
    services_per_item: list[Bar]
    checkins_per_base: list[Bar]


def _bars(rows: list[Any]) -> list[Bar]:
    return [Bar(str(key), str(label), int(count)) for key, label, count in rows]


def cards_per_batch(session: Session) -> list[Bar]:
    query = (select(col(Batch.label), col(Batch.label), func.count(col(Card.id)))
             .join(Card, col(Card.batch_id) == col(Batch.id))
             .where(col(Card.state) == JournalState.issued.value)
             .group_by(col(Batch.id), col(Batch.label)).order_by(col(Batch.id)))
    return _bars(list(session.execute(query)))


def cards_per_month(session: Session, tz: dt.tzinfo) -> list[Bar]:
    """Issued cards per local month, the last :data:`MONTHS_SHOWN` months with any."""
    issued = session.execute(select(col(Card.issued_at)).where(col(Card.state) == JournalState.issued.value)
                             .where(col(Card.issued_at).is_not(None))).scalars()
    counts: dict[str, int] = {}
    for at in issued:
        month = local_month(at, tz)
        counts[month] = counts.get(month, 0) + 1
    months = sorted(counts)[-MONTHS_SHOWN:]
    return [Bar(m, m, counts[m]) for m in months]


def services_per_point(session: Session) -> list[Bar]:
    query = (select(col(ServicePoint.code), col(ServicePoint.name), func.count(col(ServiceRecord.id)))
             .join(ServiceRecord, col(ServiceRecord.service_point_code) == col(ServicePoint.code))
             .group_by(col(ServicePoint.code), col(ServicePoint.name)).order_by(col(ServicePoint.code)))
    return _bars(list(session.execute(query)))


def services_per_item(session: Session) -> list[Bar]:
    query = (select(col(ServiceItem.code), col(ServiceItem.name), func.count(col(ServiceRecord.id)))
             .join(ServiceRecord, col(ServiceRecord.item_code) == col(ServiceItem.code))
             .group_by(col(ServiceItem.code), col(ServiceItem.name), col(ServiceItem.sort))
             .order_by(col(ServiceItem.sort), col(ServiceItem.code)))
    return _bars(list(session.execute(query)))


def checkins_per_base(session: Session) -> list[Bar]:
    query = (select(col(PartnerBase.code), col(PartnerBase.name), func.count(col(Checkin.id)))
             .join(Programme, col(Programme.base_code) == col(PartnerBase.code))
             .join(Checkin, col(Checkin.programme_code) == col(Programme.code))
             .group_by(col(PartnerBase.code), col(PartnerBase.name)).order_by(col(PartnerBase.code)))
    return _bars(list(session.execute(query)))


def dashboard(db: Database, tz: dt.tzinfo) -> Dashboard:
    def read(session: Session) -> Dashboard:
        return Dashboard(cards_per_batch(session), cards_per_month(session, tz), services_per_point(session),
                         services_per_item(session), checkins_per_base(session))

    return db.read(read)
