"""Privacy requests (PIPL): a member asked to withdraw a consent or to be erased.

Migration ``0005_privacy_requests`` creates the table; the class must match it (a test checks). A
request names the member only by public id (never a name or ID number), so the record of what was
asked and what was done survives the erasure it led to. ``note`` is free text for the handler; the
page warns not to put personal data in it.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlmodel import Field, SQLModel

from cardsvc.registry.models import UtcDateTime, utcnow

NOTE_MAX = 200


class RequestKind(StrEnum):
    consent_withdrawal = "consent_withdrawal"
    erasure = "erasure"


class RequestStatus(StrEnum):
    pending = "pending"
    done = "done"
    refused = "refused"


class PrivacyRequest(SQLModel, table=True):
    __tablename__ = "privacy_request"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=24)
    member_public_id: str = Field(max_length=40, index=True)
    partner_code: str | None = Field(default=None, max_length=64)
    received_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    received_by: str = Field(max_length=64)
    status: str = Field(default=RequestStatus.pending.value, max_length=16, index=True)
    handled_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    handled_by: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=NOTE_MAX)
