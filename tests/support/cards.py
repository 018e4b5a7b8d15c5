"""In-process connection to an emulated card: the fast path for driver tests and tear tests.

``DirectConnection`` implements :class:`cardsvc.transport.base.CardConnection` over a
:class:`cardsvc.emulator.base.VirtualCard`, with the same fault model the vpcd bridge uses:
``tear_at=k`` cuts power *during* the k-th APDU (0-based) — the card applies what survives and the
host sees :class:`CardRemoved` — and every later transmit also raises ``CardRemoved``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cardsvc.emulator.base import VirtualCard
from cardsvc.errors import CardRemoved


@dataclass
class DirectConnection:
    card: VirtualCard
    tear_at: int | None = None
    reader: str = "Direct 00 00"
    sent: list[bytes] = field(default_factory=list)
    removed: bool = False

    def __post_init__(self) -> None:
        self.card.power_on()

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def transmit(self, apdu: bytes) -> bytes:
        if self.removed:
            raise CardRemoved("card removed")
        index = len(self.sent)
        self.sent.append(bytes(apdu))
        if self.tear_at is not None and index == self.tear_at:
            self.card.tear(bytes(apdu))
            self.removed = True
            raise CardRemoved(f"card pulled during APDU {index}")
        return self.card.process(bytes(apdu))

    def close(self) -> None:
        self.removed = True

    def reinsert(self) -> DirectConnection:
        """The same card placed on the reader again (powered up, fresh volatile state)."""
        return DirectConnection(self.card, reader=self.reader)
