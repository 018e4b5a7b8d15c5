"""Entry point: builds the typer app from the command-group modules and maps errors to exit codes."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.markup import escape

from cardsvc import errors
from cardsvc.cli.output import err_console

# Each module exposes ``register(app)``; add a module here to add its commands.
_COMMAND_MODULES = (
    "cardsvc.cli.readers",
    "cardsvc.cli.emulate",
    "cardsvc.cli.keys",
    "cardsvc.cli.cardkeys",
    "cardsvc.cli.piikeys",
    "cardsvc.cli.trust",
    "cardsvc.cli.verify",
    "cardsvc.cli.init",
    "cardsvc.cli.orgs",
    "cardsvc.cli.members",
    "cardsvc.cli.serve",
    "cardsvc.cli.batch",
    "cardsvc.cli.card",
    "cardsvc.cli.clients",
    "cardsvc.cli.audit",
    "cardsvc.cli.tap",
    "cardsvc.cli.users",
)

# One table: error class -> process exit code (most specific first). 0 ok, 1 unexpected, 2 usage.
EXIT_CODES: tuple[tuple[type[errors.CardsvcError], int], ...] = (
    (errors.ConfigError, 3),
    (errors.ProfileError, 4),
    (errors.TransportError, 5),
    (errors.CardError, 6),
    (errors.CredentialVerificationError, 7),
    (errors.CredentialError, 8),
    (errors.RegistryError, 9),
    (errors.IssuanceError, 10),
    (errors.AccessError, 11),
    (errors.CardsvcError, 12),
)


def exit_code_for(exc: errors.CardsvcError) -> int:
    return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="cardsvc",
        help="Issue and verify trade-union membership smart cards.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    app.command("version", help="Print the cardsvc version.")(_version)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def _root() -> None:
    """Issue and verify trade-union membership smart cards."""


def _version() -> None:
    from cardsvc import __version__

    print(__version__)


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app; a CardsvcError becomes one diagnostic and an exit code."""
    app = build_app()
    try:
        app(args=argv)
    except errors.CardsvcError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.diagnostics())}", highlight=False)
        sys.exit(exit_code_for(exc))
