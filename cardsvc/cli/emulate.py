"""`cardsvc emulate`: run virtual cards of one firmware profile on vpcd readers until interrupted."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from cardsvc.cli.output import console
from cardsvc.config import get_settings
from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.images import factory_for
from cardsvc.emulator.pcscd import SOCKET_ENV, PrivatePcscd, listening_ports, new_private_pcscd
from cardsvc.emulator.runtime import Emulator, Faults, Slot
from cardsvc.emulator.session import EmulationPlan, build_emulator
from cardsvc.emulator.vpcd import DEFAULT_PORT
from cardsvc.errors import ProfileError, ReaderUnavailable
from cardsvc.profiles import Profile, load_profiles

_CHECK_S = 0.25


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("emulate", help="Run emulated cards on virtual (vpcd) readers until Ctrl-C.")(
        emulate_command)


def emulate_command(
    profile: Annotated[str, typer.Option(help="Firmware profile name, e.g. ntag424-dna.")],
    readers: Annotated[int, typer.Option(min=1, max=16, help="Number of virtual readers.")] = 2,
    feed: Annotated[int | None, typer.Option(min=1, help="Present M blank cards per reader, "
                                              "one after another.")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Where card images are saved "
                                                    "[default: <data-dir>/cards].")] = None,
    tear_after: Annotated[int | None, typer.Option(min=0, help="Cut power during APDU K+1 of each "
                                                    "card.")] = None,
    mute_after: Annotated[int | None, typer.Option(min=0, help="Stop answering after K APDUs.")] = None,
    load: Annotated[list[Path] | None, typer.Option(help="Saved card image(s) to put on the readers "
                                                     "first (repeat the option).")] = None,
    private_pcscd: Annotated[bool, typer.Option(help="Start a private pcscd (root) instead of "
                                                 "using the system one.")] = False,
    port: Annotated[int, typer.Option(help="vpcd port of the first reader (system pcscd).")] = DEFAULT_PORT,
    exit_when_empty: Annotated[bool, typer.Option(help="With --feed: exit once every card has "
                                                   "been used.")] = False,
) -> None:
    settings = get_settings()
    chosen = _profile(load_profiles(settings.effective_profiles_dir), profile)
    plan = EmulationPlan(readers=readers, state_dir=state_dir or settings.data_dir / "cards",
                         feed=feed, faults=Faults(tear_after, mute_after), load=tuple(load or ()),
                         family=chosen.family)
    pcscd = new_private_pcscd(readers) if private_pcscd else None
    if pcscd is not None:
        pcscd.start()
    try:
        ports = pcscd.ports if pcscd is not None else _system_ports(port, readers)
        emulator = build_emulator(factory_for(chosen.family), plan, ports, on_removed=_announce)
        _banner(chosen, plan, ports, pcscd)
        _run(emulator, exit_when_empty=exit_when_empty and feed is not None)
    finally:
        if pcscd is not None:
            pcscd.stop()


def _profile(profiles: dict[str, Profile], name: str) -> Profile:
    if name not in profiles:
        raise ProfileError(f"no profile named {name!r}; known: {', '.join(sorted(profiles))}",
                           file="<profiles>", field="name")
    return profiles[name]


def _system_ports(first: int, readers: int) -> list[int]:
    ports = [first + i for i in range(readers)]
    missing = sorted(set(ports) - listening_ports())
    if missing:
        raise ReaderUnavailable(
            f"no vpcd reader listens on port(s) {', '.join(map(str, missing))}",
            hint="start pcscd with vsmartcard-vpcd (2 readers on 35963/35964 by default), or pass "
                 "--private-pcscd (as root) to run a private one")
    return ports


def _banner(profile: Profile, plan: EmulationPlan, ports: list[int], pcscd: PrivatePcscd | None) -> None:
    mode = f"feeding {plan.feed} cards per reader" if plan.feed else "one card per reader"
    console.print(f"emulating [bold]{profile.name}[/] ({profile.family}) on {plan.readers} reader(s), "
                  f"{mode}; images in {plan.state_dir}")
    for index, port in enumerate(ports):
        console.print(f"  reader {index}: vpcd port {port}")
    if pcscd is not None:
        console.print("private pcscd running; point PC/SC clients at it with:")
        print(f"export {SOCKET_ENV}={pcscd.socket_link}", flush=True)
    console.print("Ctrl-C saves the card images and exits.")


def _announce(slot: Slot, card: VirtualCard, number: int) -> None:
    console.print(f"reader {slot.index}: card {number} ({card.uid.hex().upper()}) removed, image saved")


def _run(emulator: Emulator, *, exit_when_empty: bool) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if main_thread else None
    emulator.start()
    try:
        while not stop.wait(_CHECK_S):
            if exit_when_empty and all(slot.wait_empty(0) for slot in emulator.slots):
                break
    except KeyboardInterrupt:
        console.print("interrupted")
    finally:
        emulator.stop()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    console.print(f"stopped after {emulator.apdus} APDUs")
