"""Request and response bodies (pydantic). Hex for hashes: JSON is a file boundary."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cardsvc.verification.audit import Checkpoint
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import ClientRecord

PLACE_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
CLIENT_ID = r"^[0-9a-f]{12}$"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response carries them."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None


class ClientView(BaseModel):
    client_id: str
    label: str
    role: Role
    service_point_id: str | None = None
    partner_base_id: str | None = None
    revoked: bool = False

    @classmethod
    def of(cls, record: ClientRecord) -> ClientView:
        return cls(
            client_id=record.client_id,
            label=record.label,
            role=record.role,
            service_point_id=record.service_point_id,
            partner_base_id=record.partner_base_id,
            revoked=record.revoked,
        )


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=80)
    role: Role
    service_point_id: str | None = Field(default=None, pattern=PLACE_ID)
    partner_base_id: str | None = Field(default=None, pattern=PLACE_ID)


class ClientCreated(ClientView):
    token: str = Field(description="shown once; only its hash is stored")


class CheckpointView(BaseModel):
    size: int
    tree_head: str
    last_hash: str

    @classmethod
    def of(cls, cp: Checkpoint) -> CheckpointView:
        return cls(size=cp.size, tree_head=cp.tree_head.hex(), last_hash=cp.last_hash.hex())


def problem_response(text: str) -> dict[str, Any]:
    """An OpenAPI response documented as ``application/problem+json`` (what the handlers send)."""
    schema = Problem.model_json_schema()
    return {"description": text, "content": {"application/problem+json": {"schema": schema}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: problem_response(text)
    for status, text in (
        (401, "no, malformed, unknown or revoked token"),
        (403, "the client's role may not call this route"),
        (413, "request body too large"),
        (415, "request body is not JSON"),
        (422, "the request does not match the schema"),
        (429, "rate limit reached; see Retry-After"),
        (503, "this server is not configured for the request (e.g. no card keys)"),
    )
}
