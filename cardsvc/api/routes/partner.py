"""Partner routes: check-in (idempotent, quota-safe), check-out, offline eligibility list and sync."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from cardsvc.api.auth import client_of
from cardsvc.api.verify_schemas import (
    CODE,
    IDEMPOTENCY_KEY,
    OUTCOME_ERRORS,
    CheckinRequestBody,
    CheckinView,
    EligibilityListView,
    SyncRequest,
    SyncResult,
    verification_of,
)
from cardsvc.registry.verification_models import Checkin
from cardsvc.verification.recuperation import (
    PSEUDONYM_SIZE,
    CheckinRequest,
    CheckinResult,
    check_in_committed,
    check_out,
    offline_list,
    sync,
)

router = APIRouter(prefix="/v1", tags=["recuperation"], responses=OUTCOME_ERRORS)

RequiredKey = Annotated[str, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY)]


def _view(result: CheckinResult) -> CheckinView:
    return CheckinView(checkin_id=result.checkin_id, programme=result.programme,
                       card_number=result.card_number, checked_in_at=result.checked_in_at,
                       replayed=result.replayed, quota_left=result.quota_left)


@router.post("/checkins", name="checkins_create", response_model=CheckinView, status_code=201)
async def checkins_create(body: CheckinRequestBody, request: Request, response: Response,
                          idempotency_key: RequiredKey) -> CheckinView:
    """Check a member in to a programme of the partner's base (needs ``Idempotency-Key``)."""
    client, svc = client_of(request), verification_of(request)
    checkin = CheckinRequest(body.programme, body.qr, idempotency_key)
    result = await asyncio.to_thread(check_in_committed, svc, client, checkin)
    if result.replayed:
        response.status_code = 200
    return _view(result)


@router.post("/checkins/sync", name="checkins_sync", response_model=list[SyncResult])
async def checkins_sync(body: SyncRequest, request: Request) -> list[SyncResult]:
    """Upload check-ins made offline; each item is answered on its own (accepted, duplicate, conflict)."""
    client, svc = client_of(request), verification_of(request)
    items = [CheckinRequest(body.programme, i.qr, i.idempotency_key, i.checked_in_at, "offline")
             for i in body.items]
    answers = await asyncio.to_thread(sync, svc, client, items)
    return [SyncResult(idempotency_key=a.idempotency_key, status=a.status, reason=a.reason,
                       checkin_id=a.checkin_id) for a in answers]


@router.post("/checkins/{checkin_id}/checkout", name="checkouts_create", response_model=CheckinView)
async def checkouts_create(checkin_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                           request: Request) -> CheckinView:
    """Check a member out (once)."""
    client, svc = client_of(request), verification_of(request)
    checkin: Checkin = await svc.db.run(lambda s: check_out(s, svc, client, checkin_id))
    assert checkin.id is not None  # noqa: S101 - a stored row
    return CheckinView(checkin_id=checkin.id, programme=checkin.programme_code,
                       card_number=checkin.card_number, checked_in_at=checkin.checked_in_at,
                       checked_out_at=checkin.checked_out_at)


@router.get("/programmes/{programme}/eligibility", name="eligibility_list",
            response_model=EligibilityListView)
async def eligibility_list(programme: Annotated[str, Path(pattern=CODE)],
                           request: Request) -> EligibilityListView:
    """The programme's pseudonymous eligibility list for offline verification (no names, no numbers)."""
    client, svc = client_of(request), verification_of(request)
    found = await svc.db.run(lambda s: offline_list(s, client, programme, svc.list_secret))
    return EligibilityListView(programme=found.programme.code, base=found.programme.base_code,
                               starts_on=found.programme.starts_on, ends_on=found.programme.ends_on,
                               timezone=str(svc.zone),
                               list_key=found.list_key.hex(), pseudonym_bytes=PSEUDONYM_SIZE,
                               entries=[e.hex() for e in found.entries])
