"""`cardsvc readers`: list PC/SC readers, the ATR of each card, and the firmware profile it matches."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cardsvc.cli.output import emit_json, emit_table, err_console
from cardsvc.config import get_settings
from cardsvc.errors import ProfileError
from cardsvc.profiles import Profile, load_profiles, match_atr
from cardsvc.transport import pcsc
from cardsvc.transport.base import ReaderInfo


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("readers", help="List card readers, card ATRs and matching firmware profiles.")(
        readers_command)


def readers_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    profiles = _profiles_or_none()
    rows = [describe_reader(info, profiles) for info in pcsc.list_readers()]
    if as_json:
        emit_json(rows)
    else:
        emit_table("Card readers", ("reader", "atr", "profile"), rows)


def _profiles_or_none() -> dict[str, Profile]:
    settings = get_settings()
    try:
        return load_profiles(settings.effective_profiles_dir)
    except ProfileError as exc:
        err_console.print(f"[yellow]warning:[/] firmware profiles unavailable: {exc.message}",
                          highlight=False)
        return {}


def describe_reader(info: ReaderInfo, profiles: dict[str, Profile]) -> dict[str, Any]:
    """One output row: reader, ATR hex (or ``None``), matched profile names and a human summary."""
    if info.atr is None:
        return {"reader": info.name, "atr": None, "profiles": [], "profile": "(no card)"}
    atr = info.atr.hex().upper()
    names = [p.name for p in match_atr(profiles, info.atr)]
    summary = ", ".join(names) if names else f"no profile matches ATR {atr}"
    return {"reader": info.name, "atr": atr, "profiles": names, "profile": summary}
