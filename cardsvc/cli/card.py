"""`cardsvc card`: show one card and change its lifecycle (suspend, resume, lost, replace, revoke,
renew); `card revoked` writes the revocation list for `cardsvc trust export --revoked`."""

from __future__ import annotations

import getpass
import re
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from cardsvc.cli.output import console, emit_json
from cardsvc.config import get_settings
from cardsvc.issuance.lifecycle import CardView, LifecycleChange, LifecycleService
from cardsvc.registry.db import engine_for, require_head, session_factory
from cardsvc.verification.store import append_card_change

app = typer.Typer(help="One card: show it, change its lifecycle.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="why (kept in the card history)")]
BatchOption = Annotated[str | None, typer.Option(
    "--batch", help="batch for the new card (default: the old card's batch)")]


def register(app_root: typer.Typer) -> None:
    """Add `cardsvc card …` to the root app."""
    app_root.add_typer(app, name="card")


def _actor() -> str:
    """``user.host`` in the audit log's name alphabet (letters, digits, ``_.:-``)."""
    raw = f"{getpass.getuser()}.{socket.gethostname()}"
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", raw)[:64]


def _service() -> LifecycleService:
    engine = engine_for(get_settings())
    require_head(engine)
    return LifecycleService(session_factory(engine), actor=_actor(), audit=append_card_change)


def _view(view: CardView) -> dict[str, Any]:
    data = asdict(view)
    data["events"] = [{"at": e.at.isoformat(), "action": e.action, "from": e.from_state, "to": e.to_state,
                       "actor": e.actor, "detail": e.detail} for e in view.events]
    return data


@app.command("show")
def show(card_number: str, as_json: JsonOption = False) -> None:
    """Journal state, lifecycle status, batch, member (pseudonymous id) and history."""
    data = _view(_service().show(card_number))
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        if key != "events":
            console.print(f"{key}: {value}")
    for event in data["events"]:
        console.print(f"  {event['at']}  {event['action']:<8} {event['from']:>10} → {event['to']:<10} "
                      f"{event['actor']} {event['detail']}")


def _report(change: LifecycleChange, as_json: bool) -> None:
    if as_json:
        emit_json(asdict(change))
        return
    extra = f"; new card {change.new_card_number} reserved" if change.new_card_number else ""
    console.print(f"card {change.card_number}: {change.from_status} → {change.to_status}{extra}")


@app.command("suspend")
def suspend(card_number: str, reason: ReasonOption = "", as_json: JsonOption = False) -> None:
    """Temporarily stop a card from verifying."""
    _report(_service().suspend(card_number, reason=reason), as_json)


@app.command("resume")
def resume(card_number: str, reason: ReasonOption = "", as_json: JsonOption = False) -> None:
    """Back to active (after suspend, or a lost card found again)."""
    _report(_service().resume(card_number, reason=reason), as_json)


@app.command("lost")
def lost(card_number: str, reason: ReasonOption = "", as_json: JsonOption = False) -> None:
    """Put a lost card on hold (it stops verifying; `replace` issues a new one)."""
    _report(_service().lost(card_number, reason=reason), as_json)


@app.command("revoke")
def revoke(card_number: str, reason: ReasonOption = "", as_json: JsonOption = False) -> None:
    """Revoke for good (a reservation not yet written is voided)."""
    _report(_service().revoke(card_number, reason=reason), as_json)


@app.command("replace")
def replace(card_number: str, batch: BatchOption = None, reason: ReasonOption = "",
            as_json: JsonOption = False) -> None:
    """Revoke the card and reserve a new one for the member, in one transaction."""
    _report(_service().replace(card_number, batch_label=batch, reason=reason), as_json)


@app.command("renew")
def renew(card_number: str, batch: BatchOption = None, reason: ReasonOption = "",
          as_json: JsonOption = False) -> None:
    """Like replace, for a card near expiry: a new card with a new validity period."""
    _report(_service().renew(card_number, batch_label=batch, reason=reason), as_json)


@app.command("revoked")
def revoked(out: Annotated[Path | None, typer.Option("--out", help="write the list to this file")] = None,
            as_json: JsonOption = False) -> None:
    """Card numbers that must not verify (revoked, lost, suspended): input of `trust export --revoked`."""
    numbers = _service().revoked_card_numbers()
    if out is not None:
        out.write_text("".join(f"{n}\n" for n in numbers), encoding="utf-8")
        console.print(f"wrote {out}: {len(numbers)} card numbers")
    elif as_json:
        emit_json(numbers)
    else:
        for number in numbers:
            print(number)
