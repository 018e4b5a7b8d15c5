"""`cardsvc members`: import lists, list/show (masked), transfer, erase, rekey."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cardsvc.cli.output import console, emit_json, emit_table, err_console
from cardsvc.config import Settings, get_settings
from cardsvc.registry.db import engine_for, require_head, session_factory
from cardsvc.registry.importer import ImportReport
from cardsvc.registry.keys import SecretStore, cipher_from_store, new_data_key
from cardsvc.registry.masking import Audience
from cardsvc.registry.models import MemberPublic
from cardsvc.registry.report import write_report
from cardsvc.registry.services import RegistryService

members_app = typer.Typer(help="Members: import, list, show, transfer, erase, rekey.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
MEMBER_COLUMNS = ("public_id", "name", "id_number", "phone", "org_code", "categories", "status")
SHOWN_PROBLEMS = 30


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(members_app, name="members")


def _key_store(settings: Settings) -> SecretStore:
    from cardsvc.credential.keystore import open_key_store

    return open_key_store(settings)


def _service(settings: Settings | None = None) -> RegistryService:
    settings = settings or get_settings()
    engine = engine_for(settings)
    require_head(engine)
    return RegistryService(session_factory(engine), cipher_from_store(_key_store(settings)))


def _row(member: MemberPublic) -> dict[str, Any]:
    data = member.model_dump(mode="json")
    data["categories"] = "、".join(member.categories)
    return data


@members_app.command("import", help="Import a member list (XLSX or CSV: UTF-8, UTF-8 BOM, GB18030).")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    org: Annotated[str | None, typer.Option("--org", help="Organisation code for rows without one.")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count, then roll back.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write the per-row report (.xlsx/.csv).")]
    = None,
    as_json: JsonOption = False,
) -> None:
    service = _service()
    with _progress(disabled=as_json) as bar:
        task = bar.add_task("importing", total=None)

        def advance(done: int, expected: int | None) -> None:
            bar.update(task, completed=done, total=expected)

        result = service.import_members(file, org_code=org, dry_run=dry_run, progress=advance)
    if report is not None:
        write_report(result, report)
    _print_import(result, as_json=as_json)


def _progress(*, disabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True, disable=disabled)


def _print_import(result: ImportReport, *, as_json: bool) -> None:
    counts = {"source": result.source, "dry_run": result.dry_run, "rows_read": result.rows_read,
              "created": result.created, "updated": result.updated, "unchanged": result.unchanged,
              "rejected_rows": result.rejected_rows}
    if as_json:
        emit_json({**counts, "notices": list(result.notices),
                   "problems": [asdict(p) for p in result.problems]})
        return
    for notice in result.notices:
        err_console.print(f"[yellow]notice:[/] {notice}")
    if result.problems:
        emit_table(f"Problems (first {SHOWN_PROBLEMS}; --report writes all)",
                   ("row", "field", "reason", "message"),
                   [asdict(p) for p in result.problems[:SHOWN_PROBLEMS]])
    verb = "would be " if result.dry_run else ""
    console.print(f"{result.rows_read} rows read: {result.created} {verb}created, {result.updated} "
                  f"{verb}updated, {result.unchanged} unchanged, {result.rejected_rows} rejected")


@members_app.command("list", help="List members (masked).")
def list_command(
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    partner: Annotated[bool, typer.Option("--partner", help="Mask as a partner sees it.")] = False,
    as_json: JsonOption = False,
) -> None:
    audience = Audience.partner if partner else Audience.staff
    rows = [_row(m) for m in _service().list_members(org_code=org, limit=limit, offset=offset,
                                                      audience=audience)]
    if as_json:
        emit_json(rows)
    else:
        emit_table("Members", MEMBER_COLUMNS, rows)


@members_app.command("show", help="Show one member by public id, or by ID number with --id-number.")
def show_command(
    public_id: Annotated[str | None, typer.Argument(help="The member's public id.")] = None,
    by_id_number: Annotated[bool, typer.Option("--id-number", help="Prompt for the ID number (hidden).")]
    = False,
    as_json: JsonOption = False,
) -> None:
    service = _service()
    if by_id_number:
        member = service.find_member(typer.prompt("ID number", hide_input=True))
    elif public_id:
        member = service.get_member(public_id)
    else:
        raise typer.BadParameter("give a public id or --id-number")
    _print_member(member, as_json=as_json)


def _print_member(member: MemberPublic, *, as_json: bool) -> None:
    data = _row(member)
    if as_json:
        emit_json(data)
    else:
        for key, value in data.items():
            console.print(f"{key}: {value if value not in (None, '') else '-'}")


@members_app.command("transfer", help="关系接转: move a member to another grassroots union.")
def transfer_command(
    public_id: Annotated[str, typer.Argument(help="The member's public id.")],
    to: Annotated[str, typer.Option("--to", help="Code of the receiving organisation.")],
    on: Annotated[str | None, typer.Option("--on", help="Transfer date, YYYY-MM-DD (default today).")]
    = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (no personal data).")] = "",
    as_json: JsonOption = False,
) -> None:
    day = dt.date.fromisoformat(on) if on else None
    _print_member(_service().transfer(public_id, to_org=to, on=day, reason=reason), as_json=as_json)


@members_app.command("erase", help="Erase a member's personal data (keeps pseudonymous history).")
def erase_command(
    public_id: Annotated[str, typer.Argument(help="The member's public id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    if not yes:
        typer.confirm(f"Erase the personal data of member {public_id}? This cannot be undone", abort=True)
    _service().erase(public_id)
    console.print(f"member {public_id}: personal data erased")


@members_app.command("rekey", help="Create a new PII data key and re-encrypt every member under it.")
def rekey_command(
    resume: Annotated[bool, typer.Option("--resume", help="Do not create a key; finish a stopped rekey.")]
    = False,
) -> None:
    settings = get_settings()
    if not resume:
        new_data_key(_key_store(settings))
    count = _service(settings).rekey()
    console.print(f"{count} members re-encrypted under the newest PII data key")
