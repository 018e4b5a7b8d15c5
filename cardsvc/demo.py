"""``tools/dev.sh demo`` (``python -m cardsvc.demo``): the whole service on embedded defaults.

Steps, each idempotent so a second run reuses the data directory (``CARDSVC_DATA_DIR``, ``./var``):

1. ``cardsvc init --dev`` (schema to head, development PII keys) and ``cardsvc keys init`` when the
   key store has no issuer key yet;
2. the shipped sample organisations and members (``cardsvc/demo_data``) when the registry is empty;
3. service items, service points, partner bases and one recuperation programme, when the
   verification seed module is present;
4. two virtual readers, each with a stack of blank NTAG 424 DNA cards: a private pcscd when root
   (see ``cardsvc emulate --private-pcscd``), else the system pcscd's vpcd ports; when neither
   works the demo says why and runs the API without readers;
   the sample lists are copied to ``<data-dir>/samples`` for the README tour;
5. ``<data-dir>/demo.env`` for other shells (``source var/demo.env``): data directory, issuer,
   ``PCSCLITE_CSOCK_NAME`` (a symlink to whichever pcscd runs the readers), the venv's ``PATH`` and
   fresh API tokens of a demo service point and a demo partner base (earlier ones are revoked);
6. ``cardsvc serve`` on 127.0.0.1:8000 in the foreground. Ctrl-C (or SIGTERM) stops the server,
   then the readers, then pcscd, and exits 0.

``python -m cardsvc.demo phone-tap IMAGE`` plays an NFC phone: it reads the SUN URL of a saved NTAG
424 DNA card image (and saves the card back, its read counter moved) and prints the URL to open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType

from sqlalchemy import func
from sqlmodel import Session, select

from cardsvc.cli.main import run
from cardsvc.cli.output import console, err_console
from cardsvc.config import Settings, get_settings
from cardsvc.credential import open_key_store
from cardsvc.demo_data import MEMBERS, NEW_MEMBERS, ORGS
from cardsvc.drivers.base import driver_for
from cardsvc.emulator.direct import DirectLink
from cardsvc.emulator.images import factory_for, load_image, save_image
from cardsvc.emulator.pcscd import (
    SOCKET_ENV,
    PrivatePcscd,
    check_prerequisites,
    listening_ports,
    new_private_pcscd,
)
from cardsvc.emulator.runtime import Emulator, Slot
from cardsvc.emulator.session import EmulationPlan, build_emulator, image_saver
from cardsvc.emulator.vpcd import DEFAULT_PORT as VPCD_PORT
from cardsvc.errors import CardsvcError, ProfileError, ReaderUnavailable
from cardsvc.issuance.keys import ensure_master_keys, ensure_uid_index
from cardsvc.logging import get_logger
from cardsvc.profiles import load_profiles, match_atr
from cardsvc.registry.db import engine_for, session_factory
from cardsvc.registry.models import Member, Organisation
from cardsvc.verification.db import Database
from cardsvc.verification.roles import Role
from cardsvc.verification.store import DbClientStore
from cardsvc.verification.tokens import create_client, revoke_client

log = get_logger(__name__)

DEMO_ISSUER = "DFTU"  # short: a 12-digit card number and one category must fit the 128-byte file
DEMO_PROFILE = "ntag424-dna"
SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")
ENV_FILE = "demo.env"
DEMO_PROGRAMME = "demo-beidaihe"
DEMO_SERVICE_POINT = "sp-district-centre"
DEMO_PARTNER_BASE = "base-beidaihe"
DEMO_CLIENT_LABEL = "demo"
TAP_DROP = "tap"  # <data-dir>/tap: a card image copied here is put on the tap reader
TAP_ENV = "CARDSVC_TAP_PCSC"  # demo.env: the tap reader's PCSCLITE_CSOCK_NAME
_SETTLE_S = 0.5  # a dropped file must be this old (not still being copied)


class DemoError(CardsvcError):
    """A demo step failed (names the step)."""

    code = "demo"


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    readers: int
    cards: int


@dataclass
class Readers:
    """What runs the virtual readers: ``names`` empty and ``note`` set when there are none."""

    names: list[str] = field(default_factory=list)
    mode: str = ""
    note: str = ""
    pcscd: PrivatePcscd | None = None
    emulator: Emulator | None = None


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m cardsvc.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    parser.add_argument("--readers", type=int, default=2, choices=range(1, 9), metavar="N",
                        help="virtual readers (default 2)")
    parser.add_argument("--cards", type=int, default=25, help="blank cards per reader (default 25)")
    args = parser.parse_args(argv)
    return Options(host=args.host, port=args.port, readers=args.readers, cards=max(1, args.cards))


# --- 1-3: data ------------------------------------------------------------------------------


def cli(*argv: str) -> None:
    """Run one ``cardsvc`` command in this process; a non-zero exit becomes :class:`DemoError`."""
    try:
        run(list(argv))
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise DemoError(f"`cardsvc {' '.join(argv)}` failed (exit {exc.code})") from None


def prepare(settings: Settings) -> dict[str, int]:
    """Schema, keys, sample data and reference data; returns what the registry holds."""
    cli("init", "--dev")
    if not open_key_store(settings).issuer_keys():
        cli("keys", "init")
    ensure_card_keys(settings)
    counts = registry_counts(settings)
    if counts["members"] == 0:
        if counts["organisations"] == 0:
            cli("orgs", "import", str(ORGS))
        cli("members", "import", str(MEMBERS))
        counts = registry_counts(settings)
    seed_reference_data(settings)
    copy_samples(settings)
    return counts


def copy_samples(settings: Settings) -> Path:
    """The sample lists, copied to ``<data-dir>/samples`` for the README tour."""
    target = settings.data_dir / "samples"
    target.mkdir(parents=True, exist_ok=True)
    for source in (ORGS, MEMBERS, NEW_MEMBERS):
        shutil.copyfile(source, target / source.name)
    return target


def ensure_card_keys(settings: Settings) -> None:
    """Development card master keys for every shipped profile and the UID index key, before the
    API starts (it loads card keys once), so phone and reader taps verify without a restart."""
    store = open_key_store(settings)
    for profile in load_profiles(settings.effective_profiles_dir).values():
        ensure_master_keys(store, profile)
    ensure_uid_index(store)


def registry_counts(settings: Settings) -> dict[str, int]:
    engine = engine_for(settings)
    try:
        with session_factory(engine)() as session:
            return {"organisations": session.exec(select(func.count()).select_from(Organisation)).one(),
                    "members": session.exec(select(func.count()).select_from(Member)).one()}
    finally:
        engine.dispose()


def seed_reference_data(settings: Settings) -> bool:
    """Service items/points, partner bases and a demo programme, if this version can seed them."""
    try:
        seed = importlib.import_module("cardsvc.verification.seed")
    except ImportError:
        console.print("reference data: no seeding module in this version (skipped)")
        return False
    engine = engine_for(settings)
    try:
        with session_factory(engine)() as session, session.begin():
            seed.seed_reference_data(session)
            if hasattr(seed, "seed_programme"):
                _seed_demo_programme(seed, session)
    finally:
        engine.dispose()
    console.print("reference data: service items, service points, partner bases seeded")
    return True


def _seed_demo_programme(seed: ModuleType, session: Session) -> None:
    today = dt.datetime.now(dt.UTC).date()
    seed.seed_programme(session, code=DEMO_PROGRAMME, base_code=DEMO_PARTNER_BASE,
                        name="北戴河疗休养(示范)", starts_on=today - dt.timedelta(days=1),
                        ends_on=today + dt.timedelta(days=90), quota=20)


# --- 4: readers -----------------------------------------------------------------------------


@contextlib.contextmanager
def virtual_readers(settings: Settings, options: Options) -> Iterator[Readers]:
    """Start pcscd (private when root) and the emulated cards; stop both on exit."""
    link = socket_link(settings)
    readers = _start_pcsc(settings, options.readers, link)
    try:
        if readers.note == "":
            readers.emulator = _start_cards(settings, options, readers)
        yield readers
    finally:
        if readers.emulator is not None:
            readers.emulator.stop()
        if readers.pcscd is not None:
            readers.pcscd.stop()


def socket_link(settings: Settings) -> Path:
    """The stable client socket name: a symlink re-aimed at whichever pcscd runs the readers."""
    return settings.data_dir.absolute() / "pcscd.comm"


def _start_pcsc(settings: Settings, count: int, link: Path) -> Readers:
    reasons: list[str] = []
    try:
        check_prerequisites()
        pcscd = new_private_pcscd(count, workdir=(settings.data_dir / "pcscd").resolve(), socket_link=link)
        pcscd.start()
        return Readers(names=pcscd.reader_names, mode="private pcscd", pcscd=pcscd)
    except ReaderUnavailable as exc:
        reasons.append(exc.message)
    ports = _system_ports(count)
    if set(ports) <= listening_ports():
        _point(link, SYSTEM_SOCKET)
        names = [f"Virtual PCD 00 {i:02X}" for i in range(count)]
        return Readers(names=names, mode=f"system pcscd (vpcd ports {ports[0]}-{ports[-1]})")
    reasons.append(f"no system pcscd with vpcd readers listens on port(s) {ports[0]}-{ports[-1]}")
    return Readers(note="; ".join(reasons))


def _system_ports(count: int) -> list[int]:
    return [VPCD_PORT + i for i in range(count)]


def _point(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(target)


def _start_cards(settings: Settings, options: Options, readers: Readers) -> Emulator:
    profile = load_profiles(settings.effective_profiles_dir)[DEMO_PROFILE]
    ports = readers.pcscd.ports if readers.pcscd is not None else _system_ports(options.readers)
    plan = EmulationPlan(readers=options.readers, state_dir=settings.data_dir / "cards", feed=options.cards,
                         family=profile.family)
    return build_emulator(factory_for(profile.family), plan, ports).start()


@dataclass
class TapReader:
    """A service point's reader on a private pcscd of its own (another PC in real life)."""

    pcscd: PrivatePcscd
    slot: Slot
    drop: Path
    stop: threading.Event = field(default_factory=threading.Event)


@contextlib.contextmanager
def tap_reader(settings: Settings, readers: Readers) -> Iterator[TapReader | None]:
    """One more reader for ``cardsvc tap``: a card image copied into ``<data-dir>/tap/`` is put
    on it (replacing the card there). Only with private pcscds (root); ``None`` otherwise."""
    if readers.pcscd is None:
        yield None
        return
    pcscd = new_private_pcscd(1, workdir=(settings.data_dir / "pcscd-tap").absolute(),
                              socket_link=settings.data_dir.absolute() / "pcscd-tap.comm").start()
    saver = image_saver(settings.data_dir / "cards" / "tap")
    tap = TapReader(pcscd, Slot(0, pcscd.ports[0], on_removed=saver), settings.data_dir / TAP_DROP)
    tap.drop.mkdir(parents=True, exist_ok=True)
    watcher = threading.Thread(target=_watch_drop, args=(tap,), name="demo-tap-drop", daemon=True)
    tap.slot.start()
    watcher.start()
    try:
        yield tap
    finally:
        tap.stop.set()
        watcher.join(5)
        tap.slot.stop()
        pcscd.stop()


def _watch_drop(tap: TapReader) -> None:
    while not tap.stop.wait(0.25):
        for path in sorted(tap.drop.glob("*.json")):
            if time.time() - path.stat().st_mtime >= _SETTLE_S:
                _place(tap.slot, path)


def _place(slot: Slot, path: Path) -> None:
    try:
        card = load_image(path)
    except ProfileError as exc:
        log.warning("tap reader: %s", exc.message)
        path.rename(path.with_suffix(".refused"))
        return
    path.unlink()
    slot.remove()
    slot.insert(card)
    log.info("tap reader: card %s placed", card.uid.hex().upper())


def phone_tap(settings: Settings, image: Path) -> str:
    """Read the SUN URL of the NTAG 424 DNA card saved in ``image``, as a phone would, and save the
    card back (its read counter moved, so the next tap is fresh)."""
    card = load_image(image)
    profiles = match_atr(load_profiles(settings.effective_profiles_dir), card.atr)
    if card.family != "ntag424" or not profiles:
        raise DemoError(f"{image.name} is not an NTAG 424 DNA card: only those carry a phone-tap URL")
    proof = driver_for(profiles[0]).prove(DirectLink(card, reader="phone"), b"")
    save_image(card, image)
    return proof.payload.decode("ascii")


def phone_tap_main(argv: Sequence[str]) -> int:
    """``python -m cardsvc.demo phone-tap IMAGE``: print the URL a phone would open."""
    if len(argv) != 1:
        err_console.print("usage: python -m cardsvc.demo phone-tap CARD-IMAGE.json")
        return 2
    try:
        url = phone_tap(get_settings(), Path(argv[0]))
    except CardsvcError as exc:
        err_console.print(f"[bold red]phone-tap:[/] {exc.diagnostics()}", highlight=False)
        return 1
    sys.stdout.write(url + "\n")
    return 0


# --- 5-6: environment file, banner, server ---------------------------------------------------


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
           env_file: Path, tap: TapReader | None = None) -> None:
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
    say(f"  first step, in another shell:  source {_shown(env_file)} && cardsvc readers")
    say("Ctrl-C stops the server, the readers and pcscd.")


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
        with virtual_readers(settings, options) as readers, tap_reader(settings, readers) as tap:
            extra = create_demo_clients(settings)
            if tap is not None:
                extra[TAP_ENV] = str(tap.pcscd.socket_link)
            env_file = write_env_file(settings, options, extra)
            banner(settings, options, counts, readers, env_file, tap)
            serve(options)
    except KeyboardInterrupt:
        console.print("interrupted")
    except CardsvcError as exc:
        err_console.print(f"[bold red]demo:[/] {exc.diagnostics()}", highlight=False)
        return 1
    console.print("demo stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
