"""``ScriptedConnection``: a :class:`~cardsvc.transport.base.CardConnection` that replays a script.

The script is a list of (expected command, response) byte pairs. An unexpected command raises
:class:`~cardsvc.errors.TransportError` naming the step and both hex strings (never an
``AssertionError``: drivers under test see the same error family as on a real reader).
``remove_at=k`` makes the k-th transmit (0-based) raise :class:`~cardsvc.errors.CardRemoved`, and
every transmit after it too, like a card pulled off the reader.
"""

from __future__ import annotations

from collections.abc import Iterable

from cardsvc.errors import CardRemoved, TransportError
from cardsvc.transport import trace

Step = tuple[bytes, bytes]


class ScriptedConnection:
    """Replays ``script``; :meth:`assert_done` checks every step was used."""

    def __init__(self, script: Iterable[Step], *, atr: bytes = b"\x3b\x80\x80\x01\x01",
                 reader: str = "Scripted 00 00", remove_at: int | None = None) -> None:
        self._script = [(bytes(cmd), bytes(rsp)) for cmd, rsp in script]
        self._atr = atr
        self._reader = reader
        self._remove_at = remove_at
        self.sent: list[bytes] = []
        self.closed = False

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def reader(self) -> str:
        return self._reader

    @property
    def remaining(self) -> int:
        return len(self._script) - len(self.sent)

    def transmit(self, apdu: bytes) -> bytes:
        step = len(self.sent)
        if self.closed:
            raise TransportError(f"{self._reader}: transmit on a closed connection")
        if self._remove_at is not None and step >= self._remove_at:
            raise CardRemoved(f"{self._reader}: card removed at APDU {step}")
        if step >= len(self._script):
            raise TransportError(f"{self._reader}: unexpected APDU {step} {apdu.hex().upper()} "
                                 "after the end of the script")
        expected, response = self._script[step]
        if bytes(apdu) != expected:
            raise TransportError(f"{self._reader}: APDU {step} mismatch: expected "
                                 f"{expected.hex().upper()}, got {bytes(apdu).hex().upper()}")
        self.sent.append(bytes(apdu))
        if trace.enabled():
            trace.trace_exchange(self._reader, expected, response, 0.0)
        return response

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        """Raise :class:`TransportError` if script steps were never sent."""
        if self.remaining:
            expected = self._script[len(self.sent)][0].hex().upper()
            raise TransportError(f"{self._reader}: {self.remaining} scripted APDUs not sent; next "
                                 f"expected {expected}")

