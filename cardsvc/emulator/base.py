"""What every emulated card family implements, and how a family is found by name.

A virtual card is a pure state machine: APDU bytes in, response bytes out. The vpcd bridge
(``cardsvc.emulator.vpcd``) moves the bytes; fault injection decides when power is lost.

Tearing: ``tear(apdu)`` is called instead of ``process(apdu)`` when power is cut *while* the card
executes that command. The family applies what its chip guarantees to survive (e.g. an atomic
single-frame write either happened entirely or not at all, a key change is atomic, a chained
write keeps the frames already committed) and forgets all volatile state (sessions, selection).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

from cardsvc.errors import ProfileError

JsonImage = dict[str, Any]

# family name (the ``family`` field of a firmware profile) -> "module:Class"
_FAMILIES = {
    "ntag424": "cardsvc.emulator.ntag424:Ntag424Card",
    "fmcos": "cardsvc.emulator.fmcos:FmcosCard",
}


@runtime_checkable
class VirtualCard(Protocol):
    """One emulated card: its non-volatile image plus volatile session state."""

    family: str

    @property
    def atr(self) -> bytes: ...

    @property
    def uid(self) -> bytes: ...

    def power_on(self) -> None:
        """Power-up / reset: drop volatile state (sessions, selected file), keep the image."""

    def process(self, apdu: bytes) -> bytes:
        """Execute one command APDU and return data ‖ SW1 SW2. Never raises for card-level errors."""

    def tear(self, apdu: bytes) -> None:
        """Power is lost while executing ``apdu``: apply only what the chip guarantees, then reset."""

    def to_image(self) -> JsonImage:
        """The non-volatile state as JSON-serialisable data (hex strings for bytes)."""


class VirtualCardFactory(Protocol):
    def blank(self, *, uid: bytes | None = None) -> VirtualCard: ...

    def from_image(self, image: JsonImage) -> VirtualCard: ...


def card_class(family: str) -> VirtualCardFactory:
    """The emulated-card class for a profile family (``ntag424``, ``fmcos``)."""
    target = _FAMILIES.get(family)
    if target is None:
        raise ProfileError(f"no emulated card for family {family!r}", file="<emulator>",
                           field="family")
    module_name, _, attr = target.partition(":")
    factory: VirtualCardFactory = getattr(importlib.import_module(module_name), attr)
    return factory
