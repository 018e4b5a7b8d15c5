"""`cardsvc audit`: verify the hash chain of the audit log (names the first tampered row), show rows."""

from __future__ import annotations

from typing import Annotated

import typer

from cardsvc.cli.clients import open_database
from cardsvc.cli.output import console, emit_json, emit_table
from cardsvc.errors import AuditIntegrityError
from cardsvc.verification.audit import checkpoint, verify_chain
from cardsvc.verification.store import read_audit

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def verify_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Recompute every link; fail (exit 12) at the first row whose content or link does not match."""
    rows = open_database().transact(read_audit)
    try:
        verify_chain(rows)
    except AuditIntegrityError as exc:
        seq = rows[exc.index].seq
        raise AuditIntegrityError(f"{exc.message} (seq {seq})", index=exc.index) from None
    cp = checkpoint(rows)
    result = {"rows": cp.size, "tree_head": cp.tree_head.hex(), "last_hash": cp.last_hash.hex()}
    if as_json:
        emit_json({"ok": True, **result})
    else:
        console.print(f"audit log OK: {cp.size} rows; tree head {result['tree_head']}")


@audit_app.command("show")
def show_command(last: Annotated[int, typer.Option("--last", min=1, help="How many rows.")] = 20,
                 as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The newest rows (no personal data is ever in them)."""
    rows = open_database().transact(read_audit)[-last:]
    data = [{"seq": r.seq, "type": r.event.event_type, "actor": r.event.actor, "subject": r.event.subject,
             "outcome": r.event.outcome.value, "reason": r.event.reason,
             "at": r.event.timestamp.isoformat(timespec="seconds")} for r in rows]
    if as_json:
        emit_json(data)
    else:
        emit_table("Audit log", ("seq", "type", "actor", "subject", "outcome", "reason", "at"), data)
