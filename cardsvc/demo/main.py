"""Demo steps 5-6: API tokens and ``demo.env`` for other shells, the banner, ``cardsvc serve`` in
the foreground; :func:`main` runs every step (``python -m cardsvc.demo``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from cardsvc.cli.output import console, err_console
from cardsvc.config import Settings, get_settings
from cardsvc.demo.base import (
    DEMO_CLIENT_LABEL,
    DEMO_ISSUER,
    DEMO_PARTNER_BASE,
    DEMO_PROFILE,
    DEMO_SERVICE_POINT,
    ENV_FILE,
    TAP_ENV,
    Options,
    cli,
    parse_options,
)
from cardsvc.demo.data import prepare
from cardsvc.demo.phone import phone_tap_main
from cardsvc.demo.readers import Readers, TapReader, socket_link, tap_reader, virtual_readers
from cardsvc.demo.staff import DEMO_USERS, StaffLogins, ensure_demo_staff
from cardsvc.emulator.pcscd import SOCKET_ENV
from cardsvc.errors import CardsvcError
from cardsvc.registry.db import engine_for
from cardsvc.verification.db import Database
from cardsvc.verification.roles import Role
from cardsvc.verification.store import DbClientStore
from cardsvc.verification.tokens import create_client, revoke_client


def write_env_file(settings: Settings, options: Options, extra: dict[str, str] | None = None) -> Path:
    """``<data-dir>/demo.env`` (mode 0600: it holds the demo's API tokens): what another shell
    exports to reach this demo."""
    base_url = f"http://{options.host}:{options.port}"
    values = {"CARDSVC_DATA_DIR": str(settings.data_dir.resolve()), "CARDSVC_ISSUER": settings.issuer,
              "CARDSVC_PUBLIC_BASE_URL": os.environ.get("CARDSVC_PUBLIC_BASE_URL", base_url),
              "CARDSVC_API": base_url, SOCKET_ENV: str(socket_link(settings)), **(extra or {})}
    lines = ["# written by `tools/dev.sh demo`; in another shell: source var/demo.env"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    lines.append(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    path = settings.data_dir / ENV_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def create_demo_clients(settings: Settings) -> dict[str, str]:
    """Fresh API tokens for the tour: a service point and a partner base (earlier demo clients are
    revoked, since a token is only ever shown once)."""
    engine = engine_for(settings)
    store = DbClientStore(Database(engine))
    try:
        return asyncio.run(_replace_clients(store))
    finally:
        engine.dispose()


async def _replace_clients(store: DbClientStore) -> dict[str, str]:
    for client in await store.list():
        if client.label.startswith(DEMO_CLIENT_LABEL) and not client.revoked:
            await revoke_client(store, client.client_id)
    service = await create_client(store, label=f"{DEMO_CLIENT_LABEL} service point", role=Role.service_point,
                                  service_point_id=DEMO_SERVICE_POINT)
    partner = await create_client(store, label=f"{DEMO_CLIENT_LABEL} partner base", role=Role.partner,
                                  partner_base_id=DEMO_PARTNER_BASE)
    return {"CARDSVC_DEMO_SERVICE_TOKEN": service.token, "CARDSVC_DEMO_PARTNER_TOKEN": partner.token}


def banner(settings: Settings, options: Options, counts: dict[str, int], readers: Readers,
           env_file: Path, tap: TapReader | None = None, logins: StaffLogins | None = None) -> None:
    data_dir = settings.data_dir.resolve()
    say("[bold]cardsvc demo[/] (embedded defaults)")
    say(f"  data      {data_dir} (SQLite cardsvc.sqlite3, file key store keys/)")
    say(f"  registry  {counts['members']} members in {counts['organisations']} organisations")
    if readers.names:
        say(f"  readers   {', '.join(readers.names)} via {readers.mode}; "
                      f"{options.cards} blank {DEMO_PROFILE} cards each")
    else:
        say(f"  readers   [yellow]none[/]: {readers.note}")
        say("            run as root, or start pcscd with vsmartcard-vpcd; the API runs anyway")
    url = f"http://{options.host}:{options.port}"
    say(f"  API       {url}  ({url}/readyz, {url}/metrics, {url}/docs)")
    say(f"  tap       {_tap_line(tap)}")
    if logins is not None:
        _staff_lines(url, logins, env_file)
    say(f"  first step, in another shell:  source {_shown(env_file)} && cardsvc readers")
    say("Ctrl-C stops the server, the readers and pcscd.")


def _staff_lines(url: str, logins: StaffLogins, env_file: Path) -> None:
    """The web login and each demo user; a password is shown on the run that created it only."""
    say(f"  web       {url}/login  (中文; English via the header switch)")
    for user in DEMO_USERS:
        password = logins.passwords.get(user.username)
        if user.username in logins.created and password is not None:
            shown = f"password {password}  (new: shown once, kept in {_shown(env_file)})"
        elif password is not None:
            shown = f"password in {_shown(env_file)} (${user.variable})"
        else:
            shown = "made outside the demo: password not known here"
        say(f"            {user.role.value:<14}{user.username:<14}{shown}")


def _tap_line(tap: TapReader | None) -> str:
    if tap is None:
        return "none (a second private pcscd needs root)"
    return (f"a service point's reader on its own pcscd (${TAP_ENV}); copy a card image from "
            f"{_shown(tap.drop.parent / 'cards')} into {_shown(tap.drop)}/ to put it there")


def say(text: str) -> None:
    console.print(text, soft_wrap=True)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path.resolve())


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise KeyboardInterrupt


def serve(options: Options) -> None:
    """``cardsvc serve`` in the foreground; returns when it stops (Ctrl-C, SIGTERM)."""
    try:
        cli("serve", "--host", options.host, "--port", str(options.port))
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal it handled after a clean shutdown


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["phone-tap"]:
        return phone_tap_main(arguments[1:])
    options = parse_options(arguments)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job may inherit SIG_IGN
    signal.signal(signal.SIGTERM, _raise_interrupt)
    os.environ.setdefault("CARDSVC_ISSUER", DEMO_ISSUER)
    os.environ.setdefault("CARDSVC_PUBLIC_BASE_URL", f"http://{options.host}:{options.port}")
    try:
        settings = get_settings()
        counts = prepare(settings)
        logins = ensure_demo_staff(settings)
        with virtual_readers(settings, options) as readers, tap_reader(settings, readers) as tap:
            extra = create_demo_clients(settings) | logins.env()
            if tap is not None:
                extra[TAP_ENV] = str(tap.pcscd.socket_link)
            env_file = write_env_file(settings, options, extra)
            banner(settings, options, counts, readers, env_file, tap, logins)
            serve(options)
    except KeyboardInterrupt:
        console.print("interrupted")
    except CardsvcError as exc:
        err_console.print(f"[bold red]demo:[/] {exc.diagnostics()}", highlight=False)
        return 1
    console.print("demo stopped")
    return 0
