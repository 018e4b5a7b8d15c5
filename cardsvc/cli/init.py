"""`cardsvc init`: create the data directory and bring the database schema to head."""

from __future__ import annotations

from typing import Annotated

import typer

from cardsvc.cli.output import console, emit_json
from cardsvc.config import Environment, get_settings
from cardsvc.errors import ConfigError
from cardsvc.registry.db import engine_for, upgrade_to_head
from cardsvc.registry.keys import ensure_pii_keys


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
    else:
        for key, value in result.items():
            console.print(f"{key}: {value}")
