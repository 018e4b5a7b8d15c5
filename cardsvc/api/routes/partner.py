"""Partner routes: check-in (idempotent, quota-safe), check-out, offline eligibility list and sync."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from sqlalchemy.exc import IntegrityError

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
from cardsvc.errors import Conflict, MalformedCredential, NotFound, PermissionDenied
from cardsvc.registry.verification_models import Checkin
from cardsvc.verification.recuperation import (
    PSEUDONYM_SIZE,
    CheckinRequest,
    CheckinResult,
    check_in,
    check_out,
    offline_list,
)
from cardsvc.verification.service import VerificationService
from cardsvc.verification.tokens import ClientRecord

router = APIRouter(prefix="/v1", tags=["recuperation"], responses=OUTCOME_ERRORS)

RequiredKey = Annotated[str, Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY)]


def _view(result: CheckinResult) -> CheckinView:
    return CheckinView(checkin_id=result.checkin_id, programme=result.programme,
                       card_number=result.card_number, checked_in_at=result.checked_in_at,
                       replayed=result.replayed, quota_left=result.quota_left)


async def _check_in(svc: VerificationService, client: ClientRecord, request: CheckinRequest) -> CheckinResult:
    """One check-in; a concurrent duplicate that lost on a unique index is answered like a retry."""
    try:
        return await svc.db.run(lambda s: check_in(s, svc, client, request))
    except IntegrityError:
        return await svc.db.run(lambda s: check_in(s, svc, client, request))


@router.post("/checkins", name="checkins_create", response_model=CheckinView, status_code=201)
async def checkins_create(body: CheckinRequestBody, request: Request, response: Response,
                          idempotency_key: RequiredKey) -> CheckinView:
    """Check a member in to a programme of the partner's base (needs ``Idempotency-Key``)."""
    client, svc = client_of(request), verification_of(request)
    result = await _check_in(svc, client, CheckinRequest(body.programme, body.qr, idempotency_key))
    if result.replayed:
        response.status_code = 200
    return _view(result)


@router.post("/checkins/sync", name="checkins_sync", response_model=list[SyncResult])
async def checkins_sync(body: SyncRequest, request: Request) -> list[SyncResult]:
    """Upload check-ins made offline; each item is answered on its own (accepted, duplicate, conflict)."""
    client, svc = client_of(request), verification_of(request)
    results = []
    for item in body.items:
        checkin = CheckinRequest(body.programme, item.qr, item.idempotency_key, item.checked_in_at, "offline")
        results.append(await _sync_one(svc, client, checkin))
    return results


async def _sync_one(svc: VerificationService, client: ClientRecord, request: CheckinRequest) -> SyncResult:
    key = request.idempotency_key
    try:
        result = await _check_in(svc, client, request)
    except PermissionDenied:
        raise
    except (Conflict, NotFound, MalformedCredential) as exc:
        return SyncResult(idempotency_key=key, status="conflict", reason=exc.reason or exc.code)
    status = "duplicate" if result.replayed else "accepted"
    return SyncResult(idempotency_key=key, status=status, checkin_id=result.checkin_id)


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
                               list_key=found.list_key.hex(), pseudonym_bytes=PSEUDONYM_SIZE,
                               entries=[e.hex() for e in found.entries])
