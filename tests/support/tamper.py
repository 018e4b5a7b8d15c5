"""A connection that changes one answer from the card: bad MACs, short frames, stray status words.

``TamperedConnection(inner, when, change)`` passes every APDU to ``inner``; for the first APDU for
which ``when(apdu)`` is true it returns ``change(response)`` instead of the card's response (the
card itself has executed the command). Used to check that drivers fail closed on hostile answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.cards import DirectConnection


@dataclass
class TamperedConnection:
    inner: DirectConnection
    when: Callable[[bytes], bool]
    change: Callable[[bytes], bytes]
    fired: bool = False
    sent: list[bytes] = field(default_factory=list)

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def reader(self) -> str:
        return self.inner.reader

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        response = self.inner.transmit(apdu)
        if not self.fired and self.when(apdu):
            self.fired = True
            return self.change(response)
        return response

    def close(self) -> None:
        self.inner.close()


def starts(prefix: str) -> Callable[[bytes], bool]:
    """Match APDUs by their first bytes, given as hex."""
    head = bytes.fromhex(prefix)
    return lambda apdu: apdu.startswith(head)


def flip_before_sw(response: bytes) -> bytes:
    """Flip one bit of the last data byte (a MAC's last byte), keeping the status word."""
    if len(response) < 3:
        raise AssertionError("no data byte to flip")
    return response[:-3] + bytes((response[-3] ^ 0x01,)) + response[-2:]


def cut_data(keep: int) -> Callable[[bytes], bytes]:
    """Keep only the first ``keep`` data bytes, keeping the status word."""
    return lambda response: response[:keep] + response[-2:]
