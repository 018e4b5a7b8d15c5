"""`cardsvc init`: create the data directory and bring the database schema to head.

``--dev`` also creates PII keys (development only); production creates keys in the key ceremony
with ``keys init``, ``pii-keys create`` and ``card-keys create``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cardsvc.cli.output import console, emit_json
from cardsvc.config import Environment, get_settings
from cardsvc.errors import ConfigError
from cardsvc.registry.db import engine_for, upgrade_to_head
from cardsvc.registry.keys import ensure_pii_keys

PRODUCTION_KEY_STEPS = ("cardsvc keys init; cardsvc pii-keys create; "
                        "cardsvc card-keys create --version 1")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("init", help="Create the data directory and bring the database schema up to date.")(
        init_command)


def init_command(
    dev: Annotated[bool, typer.Option("--dev", help="Also create development PII keys (env=dev only).")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    settings = get_settings()
    if dev and settings.env is not Environment.dev:
        raise ConfigError("--dev creates development keys and is refused outside CARDSVC_ENV=dev")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine_for(settings)
    try:
        revision = upgrade_to_head(engine)
    finally:
        engine.dispose()
    result: dict[str, object] = {"data_dir": str(settings.data_dir.resolve()), "schema": revision}
    if dev:
        from cardsvc.credential.keystore import open_key_store

        result["pii_data_key_version"] = ensure_pii_keys(open_key_store(settings))
    if as_json:
        emit_json(result)
        return
    for key, value in result.items():
        console.print(f"{key}: {value}")
    if not dev:
        console.print(f"keys are created once, in the key ceremony (docs/operations.md §3): "
                      f"{PRODUCTION_KEY_STEPS}")
