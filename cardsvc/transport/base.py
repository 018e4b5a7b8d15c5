"""The connection protocol every transport implements: bytes in, bytes out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    """A reader as PC/SC names it, and the ATR of the card in it (``None`` when empty)."""

    name: str
    atr: bytes | None


@runtime_checkable
class CardConnection(Protocol):
    """An open connection to one card.

    ``transmit`` sends one command APDU and returns the full response including SW1 SW2.
    It raises :class:`~cardsvc.errors.CardRemoved`, :class:`~cardsvc.errors.CardTimeout` or another
    :class:`~cardsvc.errors.TransportError`; it never returns a half response.
    """

    @property
    def atr(self) -> bytes: ...

    @property
    def reader(self) -> str: ...

    def transmit(self, apdu: bytes) -> bytes: ...

    def close(self) -> None: ...
