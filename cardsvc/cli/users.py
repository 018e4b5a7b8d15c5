"""`cardsvc users`: staff users of the web pages — create, list, disable, passwd.

A password never travels in argv: it is read from ``CARDSVC_NEW_PASSWORD`` when set (scripts,
tests) or else prompted for twice without echo. Disabling a user or changing a password ends the
user's open sessions.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Annotated

import typer

from cardsvc.cli.output import console, emit_json, emit_table, err_console
from cardsvc.config import get_settings
from cardsvc.registry.db import engine_for, require_head, session_factory
from cardsvc.registry.staff import NewStaff, StaffAccounts
from cardsvc.verification.roles import Role

users_app = typer.Typer(help="Staff users of the web pages: create, list, disable, passwd.",
                        no_args_is_help=True)
PASSWORD_ENV = "CARDSVC_NEW_PASSWORD"  # noqa: S105 - the variable's name, not a password
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(users_app, name="users")


def open_accounts() -> StaffAccounts:
    engine = engine_for(get_settings())
    require_head(engine)
    return StaffAccounts(session_factory(engine))


def read_password() -> str:
    """The new password: ``CARDSVC_NEW_PASSWORD`` or a prompt (typed twice, not echoed)."""
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    return str(typer.prompt("New password", hide_input=True, confirmation_prompt=True))


@users_app.command("create")
def create_command(
    username: Annotated[str, typer.Argument(help="Login name: a-z 0-9 _ . - (lower case).")],
    role: Annotated[Role, typer.Option("--role", help="admin, clerk, service_point or partner.")],
    display_name: Annotated[str, typer.Option("--display-name", help="Shown in the page header.")],
    service_point: Annotated[str | None, typer.Option("--service-point", help="For service_point.")] = None,
    partner_base: Annotated[str | None, typer.Option("--partner-base", help="For partner.")] = None,
) -> None:
    """Create a staff user (password from a prompt or CARDSVC_NEW_PASSWORD)."""
    staff = open_accounts().create(NewStaff(
        username=username, display_name=display_name, role=role.value, password=read_password(),
        service_point_id=service_point, partner_base_id=partner_base))
    console.print(f"staff user {staff.username} ({staff.role}) created")


@users_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Every staff user with role, binding, disabled and locked flags (never a hash)."""
    rows = [asdict(u) for u in open_accounts().list()]
    if as_json:
        emit_json(rows)
    else:
        emit_table("Staff users", ("username", "display_name", "role", "bound_to", "disabled", "locked"),
                   rows)


@users_app.command("disable")
def disable_command(username: Annotated[str, typer.Argument(help="The user to disable.")]) -> None:
    """Disable a user: no more logins, open sessions end at once."""
    open_accounts().disable(username)
    err_console.print(f"staff user {username} disabled", highlight=False)


@users_app.command("passwd")
def passwd_command(username: Annotated[str, typer.Argument(help="The user whose password to set.")]) -> None:
    """Set a new password (prompt or CARDSVC_NEW_PASSWORD); clears a lock-out, ends sessions."""
    open_accounts().set_password(username, read_password())
    err_console.print(f"password of {username} changed", highlight=False)
