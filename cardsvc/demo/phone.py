"""``python -m cardsvc.demo phone-tap IMAGE``: play an NFC phone reading a saved NTAG 424 DNA card's
SUN URL (the card is saved back with its read counter moved, so the next tap is fresh)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cardsvc.cli.output import err_console
from cardsvc.config import Settings, get_settings
from cardsvc.demo.base import DemoError
from cardsvc.drivers.base import driver_for
from cardsvc.emulator.direct import DirectLink
from cardsvc.emulator.images import load_image, save_image
from cardsvc.errors import CardsvcError
from cardsvc.profiles import load_profiles, match_atr


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
