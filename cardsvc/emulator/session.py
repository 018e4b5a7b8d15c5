"""What ``cardsvc emulate`` runs: which cards go on which reader, and where their images are saved.

Cards per reader: loaded images first (image k goes to reader k mod N), then blank cards — ``feed``
blanks per reader when feeding, otherwise one blank for each reader that received no image.
Every card that leaves a reader (fed out, torn, shutdown) is saved as
``<state-dir>/<reader-index>-<n>-<UID>.json`` (n counts the cards that reader has held, from 1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cardsvc.emulator.base import VirtualCard, VirtualCardFactory
from cardsvc.emulator.images import image_path, load_image, save_image
from cardsvc.emulator.runtime import Emulator, Faults, RemovedCallback, Slot
from cardsvc.emulator.vpcd import DEFAULT_HOST
from cardsvc.errors import ProfileError

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmulationPlan:
    readers: int
    state_dir: Path
    feed: int | None = None
    faults: Faults = field(default_factory=Faults)
    load: tuple[Path, ...] = ()
    family: str | None = None  # when set, loaded images must be of this family


def queued_cards(factory: VirtualCardFactory, plan: EmulationPlan) -> list[list[VirtualCard]]:
    queues: list[list[VirtualCard]] = [[] for _ in range(plan.readers)]
    for k, path in enumerate(plan.load):
        card = load_image(path)
        if plan.family is not None and card.family != plan.family:
            raise ProfileError(f"card image holds a {card.family!r} card; the profile family is "
                               f"{plan.family!r}", file=str(path), field="family")
        queues[k % plan.readers].append(card)
    for queue in queues:
        blanks = plan.feed if plan.feed is not None else (0 if queue else 1)
        queue.extend(factory.blank() for _ in range(blanks))
    return queues


def image_saver(state_dir: Path) -> RemovedCallback:
    def save(slot: Slot, card: VirtualCard, number: int) -> None:
        path = save_image(card, image_path(state_dir, slot.index, number, card.uid))
        _log.info("reader %d: card image saved to %s", slot.index, path)

    return save


def build_emulator(factory: VirtualCardFactory, plan: EmulationPlan, ports: Sequence[int],
                   host: str = DEFAULT_HOST, on_removed: RemovedCallback | None = None) -> Emulator:
    """Slots for the first ``plan.readers`` ports, not yet started."""
    save = image_saver(plan.state_dir)

    def removed(slot: Slot, card: VirtualCard, number: int) -> None:
        save(slot, card, number)
        if on_removed is not None:
            on_removed(slot, card, number)

    queues = queued_cards(factory, plan)
    slots = [Slot(i, port, cards=queues[i], feed=plan.feed is not None, faults=plan.faults,
                  host=host, on_removed=removed)
             for i, port in enumerate(ports[: plan.readers])]
    return Emulator(slots)
