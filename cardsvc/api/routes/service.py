"""Service-point routes: record a service after a verified tap; statistics per point, item, month."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from sqlmodel import Session

from cardsvc.api.auth import client_of
from cardsvc.api.verify_schemas import (
    CODE,
    IDEMPOTENCY_KEY,
    OUTCOME_ERRORS,
    ServiceRecordRequest,
    ServiceRecordResponse,
    StatRowView,
    verification_of,
)
from cardsvc.errors import Conflict, InvalidRecord
from cardsvc.verification.outcome import Verdict
from cardsvc.verification.points import ServiceRequest, record_service, statistics

router = APIRouter(prefix="/v1", tags=["service points"], responses=OUTCOME_ERRORS)

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY)]


@router.post("/service-records", name="service_records_create", response_model=ServiceRecordResponse,
             status_code=201)
async def service_records_create(body: ServiceRecordRequest, request: Request, response: Response,
                                 idempotency_key: IdempotencyKey = None) -> ServiceRecordResponse:
    """Record a service for a card this client just verified (``card_number``) or verifies now (``qr``)."""
    client, svc = client_of(request), verification_of(request)
    if (body.card_number is None) == (body.qr is None):
        raise InvalidRecord("give exactly one of card_number and qr", field="card_number")

    def work(session: Session) -> ServiceRecordResponse:
        card_number = body.card_number
        if body.qr is not None:
            result = svc.verify_qr(session, actor=client.client_id, qr_text=body.qr)
            if result.verdict is not Verdict.OK or result.card_number is None:
                raise Conflict("the card does not verify", reason=result.reason or "not_ok")
            card_number = result.card_number
        assert card_number is not None  # noqa: S101 - one of the two is set (checked above)
        request_ = ServiceRequest(item_code=body.item, card_number=card_number,
                                  service_point=body.service_point, idempotency_key=idempotency_key)
        record, replayed = record_service(session, client, request_, svc.clock(),
                                          tz=request.app.state.settings.zone)
        assert record.id is not None  # noqa: S101 - flushed
        return ServiceRecordResponse(record_id=record.id, service_point=record.service_point_code,
                                     item=record.item_code, card_number=record.card_number,
                                     month=record.month, recorded_at=record.recorded_at, replayed=replayed)

    result = await svc.db.run(work)
    if result.replayed:
        response.status_code = 200
    return result


@router.get("/service-records/stats", name="service_records_stats", response_model=list[StatRowView])
async def service_records_stats(
    request: Request,
    month: Annotated[str | None, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")] = None,
    service_point: Annotated[str | None, Query(pattern=CODE)] = None,
) -> list[StatRowView]:
    """Counts per service point, item and month (a service-point client: its own point)."""
    client, svc = client_of(request), verification_of(request)
    rows = await svc.db.run(lambda s: statistics(s, client, point=service_point, month=month))
    return [StatRowView(service_point=r.service_point, item=r.item, month=r.month, count=r.count)
            for r in rows]
