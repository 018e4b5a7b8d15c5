"""A connection straight into an emulated card: what an NFC phone, a benchmark or a test sees.

:class:`DirectLink` satisfies :class:`cardsvc.transport.base.CardConnection` structurally (bytes in,
bytes out) with no reader, pcscd or socket in between; with ``record=True`` it keeps every APDU sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Chip(Protocol):
    """The part of :class:`~cardsvc.emulator.base.VirtualCard` a direct link uses."""

    @property
    def atr(self) -> bytes: ...

    def power_on(self) -> None: ...

    def process(self, apdu: bytes) -> bytes: ...


@dataclass
class DirectLink:
    card: Chip
    reader: str = "direct"
    record: bool = False
    sent: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.card.power_on()

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def transmit(self, apdu: bytes) -> bytes:
        if self.record:
            self.sent.append(bytes(apdu))
        return self.card.process(apdu)

    def close(self) -> None:
        """Nothing to release: the card object stays with the caller."""
