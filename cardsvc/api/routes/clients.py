"""Client management, whoami and the audit checkpoint. A client change and its audit row are
recorded together (``ClientStore.add_recorded`` / ``revoke_recorded``: one transaction in the database)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from cardsvc.api.auth import client_of, services_of
from cardsvc.api.schemas import CLIENT_ID, CheckpointView, ClientCreate, ClientCreated, ClientView
from cardsvc.api.services import Services
from cardsvc.logging import get_logger
from cardsvc.verification.audit import AuditEvent, Outcome, checkpoint
from cardsvc.verification.tokens import new_client

log = get_logger(__name__)

router = APIRouter(prefix="/v1")

ClientId = Annotated[str, Path(pattern=CLIENT_ID)]


@router.get("/whoami", name="whoami", response_model=ClientView)
async def whoami(request: Request) -> ClientView:
    """The calling client: its role and the service point or partner base it is bound to."""
    return ClientView.of(client_of(request))


@router.get("/clients", name="clients_list", response_model=list[ClientView])
async def clients_list(request: Request) -> list[ClientView]:
    """Every API client (admin)."""
    return [ClientView.of(record) for record in await services_of(request).clients.list()]


@router.post("/clients", name="clients_create", response_model=ClientCreated, status_code=201)
async def clients_create(body: ClientCreate, request: Request) -> ClientCreated:
    """Create a client (admin). The token is in this response only; store it now."""
    services, client = services_of(request), client_of(request)
    issued = new_client(label=body.label, role=body.role, service_point_id=body.service_point_id,
                        partner_base_id=body.partner_base_id, clock=services.clock)
    event = _event(services, "client.create", client.client_id, issued.client.client_id, "created")
    await services.clients.add_recorded(issued.client, event)
    log.info("client %s created with role %s", issued.client.client_id, body.role.value)
    return ClientCreated(**ClientView.of(issued.client).model_dump(), token=issued.token)


@router.post("/clients/{client_id}/revoke", name="clients_revoke", response_model=ClientView)
async def clients_revoke(client_id: ClientId, request: Request) -> ClientView:
    """Revoke a client (admin); its token stops working at once."""
    services, client = services_of(request), client_of(request)
    event = _event(services, "client.revoke", client.client_id, client_id, "revoked")
    record = await services.clients.revoke_recorded(client_id, event)
    log.info("client %s revoked", client_id)
    return ClientView.of(record)


@router.get("/audit/checkpoint", name="audit_checkpoint", response_model=CheckpointView)
async def audit_checkpoint(request: Request) -> CheckpointView:
    """Size, RFC 6962 tree head and last chain hash of the audit log (admin)."""
    return CheckpointView.of(checkpoint(await services_of(request).audit.rows()))


def _event(services: Services, event_type: str, actor: str, subject: str, reason: str) -> AuditEvent:
    return AuditEvent(event_type=event_type, actor=actor, subject=subject, outcome=Outcome.ok,
                      reason=reason, timestamp=services.clock())
