"""`cardsvc orgs`: import and list the union hierarchy (district → town/park/industry → grassroots)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cardsvc.cli.output import console, emit_json, emit_table, err_console
from cardsvc.config import get_settings
from cardsvc.registry.db import engine_for, require_head, session_factory
from cardsvc.registry.services import OrgService

orgs_app = typer.Typer(help="Union organisations: import and list.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(orgs_app, name="orgs")


def _service() -> OrgService:
    engine = engine_for(get_settings())
    require_head(engine)
    return OrgService(session_factory(engine))


@orgs_app.command("import", help="Import organisations from XLSX/CSV (编码, 名称, 类型, 上级编码 …).")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    report = _service().import_orgs(file)
    if as_json:
        emit_json({"source": report.source, "rows_read": report.rows_read, "created": report.created,
                   "updated": report.updated, "problems": [asdict(p) for p in report.problems]})
    elif report.problems:
        emit_table("Problems (nothing was imported)", ("row", "field", "reason", "message"),
                   [asdict(p) for p in report.problems])
    else:
        console.print(f"{report.rows_read} rows: {report.created} created, {report.updated} updated")
    if report.problems:
        err_console.print("[bold red]error:[/] the organisation list has problems; nothing was imported")
        raise typer.Exit(9)


@orgs_app.command("list", help="List organisations.")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    orgs = [o.model_dump(mode="json") for o in _service().list_orgs()]
    if as_json:
        emit_json(orgs)
    else:
        emit_table("Organisations", ("code", "name", "kind", "parent_code", "uscc"), orgs)
