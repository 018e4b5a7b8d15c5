"""Service points: record a service after a verified tap, and count services per point, item, month.

A service record needs a successful verification (QR, phone or reader tap) of the same card by the
same client within :data:`TAP_WINDOW` — read from the audit log, which every verification writes —
so a record cannot be made up for a card nobody presented. An ``Idempotency-Key`` makes a retried
request return the first record instead of counting twice.

``recorded_at`` is a UTC instant; ``month`` is the *local* month (``tz``, from ``CARDSVC_TIMEZONE``)
of that instant, so a service at 07:30 on 1 December in Shanghai counts in December. Rows written
before the timezone setting carry their UTC month.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from cardsvc.errors import Conflict, InvalidRecord, NotFound, PermissionDenied
from cardsvc.localtime import local_month
from cardsvc.registry import card_repo
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.verification_models import ServiceItem, ServicePoint, ServiceRecord
from cardsvc.verification.audit import AuditEvent, Outcome
from cardsvc.verification.roles import Role
from cardsvc.verification.store import append_event
from cardsvc.verification.tokens import ClientRecord

TAP_WINDOW = dt.timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    item_code: str
    card_number: str
    service_point: str | None = None  # admin only; a service-point client records at its own point
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class StatRow:
    service_point: str
    item: str
    month: str
    count: int


def point_of(client: ClientRecord, requested: str | None) -> str:
    """Where a client records: its bound point; admins name one."""
    if client.role is Role.service_point:
        if requested is not None and requested != client.service_point_id:
            raise PermissionDenied("a service-point client records at its own point only")
        assert client.service_point_id is not None  # noqa: S101 - bound by construction
        return client.service_point_id
    if requested is None:
        raise InvalidRecord("name the service point", field="service_point")
    return requested


def record_service(session: Session, client: ClientRecord, request: ServiceRequest,
                   now: dt.datetime, *, tz: dt.tzinfo) -> tuple[ServiceRecord, bool]:
    """Record one service, counted in the local month (``tz``) of ``now``; returns ``(record, replayed)``."""
    point = point_of(client, request.service_point)
    if request.idempotency_key is not None:
        earlier = repo.find_service_record(session, client_id=client.client_id,
                                           idempotency_key=request.idempotency_key)
        if earlier is not None:
            return earlier, True
    _known(session, point, request.item_code)
    card = card_repo.get_card(session, card_number=request.card_number)
    if not repo.recent_ok_verification(session, actor=client.client_id, subject=card.card_number,
                                       since=now - TAP_WINDOW):
        raise Conflict("verify the card first (QR, phone or reader tap)", reason="no_recent_verification")
    record = repo.add_service_record(session, record=ServiceRecord(
        service_point_code=point, item_code=request.item_code, member_id=card.member_id,
        card_number=card.card_number, client_id=client.client_id, idempotency_key=request.idempotency_key,
        month=local_month(now, tz), recorded_at=now))
    append_event(session, AuditEvent(event_type="service.record", actor=client.client_id,
                                     subject=card.card_number, outcome=Outcome.ok,
                                     reason=request.item_code.lower(), timestamp=now))
    return record, False


def _known(session: Session, point: str, item: str) -> None:
    if session.get(ServicePoint, point) is None:
        raise NotFound(f"no service point {point}", reason="unknown_service_point")
    if session.get(ServiceItem, item) is None:
        raise NotFound(f"no service item {item}", reason="unknown_item")


def statistics(session: Session, client: ClientRecord, *, point: str | None,
               month: str | None) -> list[StatRow]:
    """Counts per point, item and month; a service-point client sees its own point only."""
    if client.role is Role.service_point:
        point = point_of(client, point)
    rows = repo.service_stats(session, point=point, month=month)
    return [StatRow(p, i, m, n) for p, i, m, n in rows]
