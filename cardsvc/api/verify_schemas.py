"""Request and response bodies of the verification routes, and the handlers' shared helpers."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from fastapi import Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cardsvc.api.auth import services_of
from cardsvc.api.schemas import problem_response
from cardsvc.errors import NotConfigured
from cardsvc.logging import get_logger
from cardsvc.verification.outcome import Verdict, Verification
from cardsvc.verification.service import VerificationService

log = get_logger(__name__)

SUN_PARAM_PATTERN = re.compile(r"^[0-9A-Fa-f]{16,32}$")
QR_TEXT = r"^UC1:[0-9A-Z $%*+\-./:]{1,600}$"
HEX = r"^[0-9a-fA-F]*$"
CODE = r"^[A-Za-z0-9_.:-]{1,64}$"
IDEMPOTENCY_KEY = r"^[A-Za-z0-9_.:-]{8,64}$"


# Beyond the app-wide ones: what the workflows refuse with (a ``reason`` code in the problem).
OUTCOME_ERRORS: dict[int | str, dict[str, Any]] = {
    404: problem_response("unknown card, programme, check-in, item or point (see reason)"),
    409: problem_response("refused: challenge used or expired, quota used up, already checked in …"),
}


def verification_of(request: Request) -> VerificationService:
    service = services_of(request).verification
    if service is None:
        log.warning("this server runs without a database: verification routes are unavailable")
        raise NotConfigured
    return service


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QrVerifyRequest(_Body):
    qr: str = Field(pattern=QR_TEXT, description="the QR text, UC1: + base45")


class VerifyResponse(BaseModel):
    outcome: Verdict
    reason: str | None = Field(description="why NOK / CHECK (a stable code); null when OK")
    method: Literal["qr", "sun", "card"]
    card_number: str | None
    card_status: str | None = None
    member: dict[str, Any] | None = Field(default=None, description="what the caller's role may see")
    checked_at: dt.datetime | None = None

    @classmethod
    def of(cls, result: Verification, member: dict[str, Any] | None) -> VerifyResponse:
        return cls(outcome=result.verdict, reason=result.reason, method=result.method,
                   card_number=result.card_number, card_status=result.card_status, member=member,
                   checked_at=result.at)


class ChallengeResponse(BaseModel):
    challenge: str = Field(description="16 random bytes, hex; single use")
    expires_at: dt.datetime
    ttl_seconds: int


class CardVerifyRequest(_Body):
    challenge: str = Field(pattern=HEX, min_length=32, max_length=32)
    uid: str = Field(pattern=HEX, min_length=8, max_length=20, description="chip UID, hex")
    kind: Literal["internal_auth", "sun"]
    payload: str = Field(min_length=1, max_length=400,
                         description="internal_auth: the cryptogram (hex); sun: the URL as read")
    credential: str | None = Field(default=None, pattern=HEX, min_length=2, max_length=256,
                                   description="credential bytes (hex) if the terminal read them; "
                                               "else the card's stored credential is checked")


class ServiceRecordRequest(_Body):
    item: str = Field(pattern=CODE)
    card_number: str | None = Field(default=None, pattern=r"^[0-9]{1,16}$",
                                    description="a card this client verified in the last 15 minutes")
    qr: str | None = Field(default=None, pattern=QR_TEXT, description="or the QR text, verified now")
    service_point: str | None = Field(default=None, pattern=CODE, description="admin only")


class ServiceRecordResponse(BaseModel):
    record_id: int
    service_point: str
    item: str
    card_number: str
    month: str
    recorded_at: dt.datetime
    replayed: bool


class StatRowView(BaseModel):
    service_point: str
    item: str
    month: str
    count: int


class CheckinRequestBody(_Body):
    programme: str = Field(pattern=CODE)
    qr: str = Field(pattern=QR_TEXT)


class CheckinView(BaseModel):
    checkin_id: int
    programme: str
    card_number: str
    checked_in_at: dt.datetime
    replayed: bool = False
    quota_left: int | None = None
    checked_out_at: dt.datetime | None = None


class SyncItem(_Body):
    idempotency_key: str = Field(pattern=IDEMPOTENCY_KEY)
    qr: str = Field(pattern=QR_TEXT)
    checked_in_at: AwareDatetime = Field(description="when it happened at the base, with a timezone "
                                                     "(a time without one is refused with 422)")


class SyncRequest(_Body):
    programme: str = Field(pattern=CODE)
    items: list[SyncItem] = Field(min_length=1, max_length=200)


class SyncResult(BaseModel):
    idempotency_key: str
    status: Literal["accepted", "duplicate", "conflict"]
    reason: str | None = None
    checkin_id: int | None = None


class EligibilityListView(BaseModel):
    programme: str
    base: str
    starts_on: dt.date
    ends_on: dt.date
    timezone: str = Field(description="IANA zone the programme's dates are local to (CARDSVC_TIMEZONE)")
    list_key: str = Field(description="HMAC key (hex) to compute a scanned card's pseudonym")
    pseudonym_bytes: int
    entries: list[str] = Field(description="HMAC-SHA256(list_key, card number)[:16], hex, sorted")
