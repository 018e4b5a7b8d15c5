"""Card images on disk: one JSON file per card, ``<state-dir>/<reader>-<n>-<UID>.json``.

A file holds ``{"format", "family", "uid", "image"}``; ``image`` is the family's own
:meth:`~cardsvc.emulator.base.VirtualCard.to_image`. Files are written atomically (temp file +
rename) so a crash never leaves half an image.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from cardsvc.emulator.base import VirtualCard, VirtualCardFactory, card_class
from cardsvc.errors import ProfileError

FORMAT = "cardsvc-card-image/1"

FactoryLookup = Callable[[str], VirtualCardFactory]


def factory_for(family: str) -> VirtualCardFactory:
    """The card class for a family, including the plumbing-only ``echo`` card."""
    if family == "echo":
        from cardsvc.emulator.echo import EchoCard

        return EchoCard
    return card_class(family)


def image_path(state_dir: Path, reader_index: int, number: int, uid: bytes) -> Path:
    return state_dir / f"{reader_index}-{number}-{uid.hex().upper()}.json"


def save_image(card: VirtualCard, path: Path) -> Path:
    document = {"format": FORMAT, "family": card.family, "uid": card.uid.hex().upper(),
                "image": card.to_image()}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)
    return path


def load_image(path: Path, lookup: FactoryLookup = factory_for) -> VirtualCard:
    """The card saved in ``path``; :class:`ProfileError` naming the file when it is not an image."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read card image: {exc}", file=str(path)) from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ProfileError(f"not a card image (format must be {FORMAT})", file=str(path),
                           field="format")
    try:
        card = lookup(str(document["family"])).from_image(document["image"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"card image does not load: {exc!r}", file=str(path), field="image") from exc
    if card.uid.hex().upper() != str(document.get("uid", "")).upper():
        raise ProfileError("UID in the file does not match the image", file=str(path), field="uid")
    return card
