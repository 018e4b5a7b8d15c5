"""`cardsvc clients`: create, list and revoke API clients; `cardsvc seed-verification`.

Tokens are printed once, at creation; the database keeps only their hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel import Session

from cardsvc.cli.output import console, emit_json, emit_table, err_console
from cardsvc.config import get_settings
from cardsvc.registry.db import engine_for, require_head
from cardsvc.verification.audit import AuditEvent, Outcome
from cardsvc.verification.db import Database
from cardsvc.verification.roles import Role
from cardsvc.verification.seed import seed_reference_data
from cardsvc.verification.store import DbClientStore, append_event
from cardsvc.verification.tokens import ClientRecord, new_client, utc_now

clients_app = typer.Typer(help="API clients: create (token shown once), list, revoke.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
CLI_ACTOR = "cli"
T = TypeVar("T")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(clients_app, name="clients")
    app.command("seed-verification", help="Seed service items, service points and partner bases.")(
        seed_command)


def open_database() -> Database:
    engine = engine_for(get_settings())
    require_head(engine)
    return Database(engine)


def _row(record: ClientRecord) -> dict[str, Any]:
    return {"client_id": record.client_id, "label": record.label, "role": record.role.value,
            "service_point_id": record.service_point_id or "",
            "partner_base_id": record.partner_base_id or "",
            "revoked": record.revoked, "created_at": record.created_at.isoformat(timespec="seconds")}


def audited(db: Database, event_type: str, subject: str, reason: str, change: Callable[[Session], T]) -> T:
    """Run ``change`` and append its audit row in one transaction: both commit or neither."""

    def work(session: Session) -> T:
        result = change(session)
        append_event(session, AuditEvent(event_type=event_type, actor=CLI_ACTOR, subject=subject,
                                         outcome=Outcome.ok, reason=reason, timestamp=utc_now()))
        return result

    return db.transact(work)


@clients_app.command("create")
def create_command(
    label: Annotated[str, typer.Option("--label", help="Operator's note, e.g. 'Beidaihe front desk'.")],
    role: Annotated[Role, typer.Option("--role", help="admin, clerk, service_point or partner.")],
    service_point: Annotated[str | None, typer.Option("--service-point", help="For service_point.")] = None,
    partner_base: Annotated[str | None, typer.Option("--partner-base", help="For partner.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a client and print its token (once)."""
    issued = new_client(label=label, role=role, service_point_id=service_point, partner_base_id=partner_base)
    audited(open_database(), "client.create", issued.client.client_id, "created",
            lambda s: DbClientStore.add_sync(s, issued.client))
    record, token = issued.client, issued.token
    if as_json:
        emit_json({**_row(record), "token": token})
        return
    console.print(f"client {record.client_id} ({record.role.value}) created")
    console.print(f"token (shown once, store it now): {token}")


@clients_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Every client (tokens are never shown again)."""
    rows = [_row(r) for r in asyncio.run(DbClientStore(open_database()).list())]
    if as_json:
        emit_json(rows)
    else:
        emit_table("API clients", ("client_id", "label", "role", "service_point_id", "partner_base_id",
                                   "revoked", "created_at"), rows)


@clients_app.command("revoke")
def revoke_command(client_id: Annotated[str, typer.Argument(help="The client's 12-hex-digit id.")]) -> None:
    """Revoke a client; its token stops working at once."""
    record = audited(open_database(), "client.revoke", client_id, "revoked",
                     lambda s: DbClientStore.revoke_sync(s, client_id))
    err_console.print(f"client {record.client_id} revoked", highlight=False)


def seed_command() -> None:
    """Idempotent: safe to run again after an upgrade."""
    open_database().transact(seed_reference_data)
    console.print("seeded service items, service points and partner bases")
