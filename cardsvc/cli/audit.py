"""`cardsvc audit`: verify the hash chain of the audit log (names the first tampered row, or the rows
missing at its end), show rows."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated

import typer
from sqlmodel import Session

from cardsvc.cli.clients import open_database
from cardsvc.cli.output import console, emit_json, emit_table
from cardsvc.errors import AuditIntegrityError
from cardsvc.registry import verification_repo
from cardsvc.verification.audit import GENESIS_HASH, AuditRow, checkpoint, verify_chain
from cardsvc.verification.store import read_audit

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def verify_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Recompute every link, then check the log ends where the head row says (its size and last
    hash); fail (exit 12) naming the first row that does not match, or the rows missing at the end."""
    head, rows = open_database().transact(_read_log)
    verify_log(rows, head)
    cp = checkpoint(rows)
    result = {"rows": cp.size, "tree_head": cp.tree_head.hex(), "last_hash": cp.last_hash.hex()}
    if as_json:
        emit_json({"ok": True, **result})
    else:
        console.print(f"audit log OK: {cp.size} rows; tree head {result['tree_head']}")


def _read_log(session: Session) -> tuple[tuple[int, bytes], list[AuditRow]]:
    # The head first: rows appended meanwhile only lengthen the table, never shorten it.
    head = verification_repo.audit_head(session)
    return head, read_audit(session)


def verify_log(rows: Sequence[AuditRow], head: tuple[int, bytes]) -> None:
    """The chain links (:func:`verify_chain`), then the end: the table holds at least the head's
    ``size`` rows and row ``size - 1`` hashes to the head's ``last_hash`` — deleting the newest rows
    leaves a valid chain, but not this."""
    try:
        verify_chain(rows)
    except AuditIntegrityError as exc:
        detail = exc.message.removeprefix(f"audit row {exc.index}: ")
        raise AuditIntegrityError(f"{detail} (seq {rows[exc.index].seq})", index=exc.index) from None
    size, last_hash = head
    if len(rows) < size:
        missing = size - len(rows)
        raise AuditIntegrityError(
            f"audit log truncated: the head records {size} rows, the table holds {len(rows)} "
            f"({missing} missing at the end: seq {len(rows)}…{size - 1})", index=len(rows))
    ended = rows[size - 1].row_hash if size else GENESIS_HASH
    if not hmac.compare_digest(ended, last_hash):
        raise AuditIntegrityError(
            f"the head's last hash does not match this row (seq {size - 1}), the one the head says "
            "ends the log: the log's end or its head was rewritten", index=max(size - 1, 0))


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
