"""Demo step 4: virtual readers with blank cards (private pcscd when root, else the system
pcscd's vpcd ports), and a service point's tap reader on a pcscd of its own."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cardsvc.config import Settings
from cardsvc.demo.base import DEMO_PROFILE, SYSTEM_SOCKET, TAP_DROP, Options
from cardsvc.emulator.images import factory_for, load_image
from cardsvc.emulator.pcscd import (
    PrivatePcscd,
    check_prerequisites,
    listening_ports,
    new_private_pcscd,
)
from cardsvc.emulator.runtime import Emulator, Slot
from cardsvc.emulator.session import EmulationPlan, build_emulator, image_saver
from cardsvc.emulator.vpcd import DEFAULT_PORT as VPCD_PORT
from cardsvc.errors import ProfileError, ReaderUnavailable
from cardsvc.logging import get_logger
from cardsvc.profiles import load_profiles

log = get_logger(__name__)
_SETTLE_S = 0.5  # a dropped file must be this old (not still being copied)


@dataclass
class Readers:
    """What runs the virtual readers: ``names`` empty and ``note`` set when there are none."""

    names: list[str] = field(default_factory=list)
    mode: str = ""
    note: str = ""
    pcscd: PrivatePcscd | None = None
    emulator: Emulator | None = None



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
