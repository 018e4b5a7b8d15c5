"""The bridge from a :class:`~cardsvc.emulator.base.VirtualCard` to vsmartcard's vpcd reader driver.

Wire protocol (vsmartcard ``vpcd.c``): the card side opens a TCP connection to the reader's port
(127.0.0.1:35963 is "Virtual PCD 00 00", +1 the next reader). Every message, both ways, is a
2-byte big-endian length and a payload. A 1-byte payload from the reader is a control: ``0`` power
off, ``1`` power on, ``2`` reset, ``4`` "send your ATR" (also pcscd's presence poll). Any longer
payload is a command APDU, answered by one response message. Closing the socket = removing the card.

Per-APDU cost matters: TCP_NODELAY on the socket and TCP_QUICKACK set again before every
``recv`` (Linux clears it), otherwise delayed ACKs add ~40 ms per exchange.
"""

from __future__ import annotations

import logging
import socket
import struct
from dataclasses import dataclass
from enum import IntEnum

_log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
_HEADER = struct.Struct(">H")
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class Control(IntEnum):
    power_off = 0
    power_on = 1
    reset = 2
    atr = 4


class LinkClosed(Exception):  # internal control flow, never leaves this package
    """The reader side closed the connection, or the card was removed locally."""


@dataclass(frozen=True, slots=True)
class Message:
    """One message from the reader: a control byte or a command APDU."""

    control: Control | None
    apdu: bytes


class VpcdLink:
    """One card-side TCP connection to a vpcd reader slot."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @classmethod
    def connect(cls, port: int, host: str = DEFAULT_HOST, timeout_s: float = 2.0) -> VpcdLink:
        """Insert a card: connect to the reader's port (raises ``OSError`` when nobody listens)."""
        sock = socket.create_connection((host, port), timeout=timeout_s)
        sock.settimeout(None)
        return cls(sock)

    def receive(self) -> Message:
        """The next message from the reader (blocks); :class:`LinkClosed` when the link ends."""
        while True:
            frame = self._take_frame()
            if frame is None:
                self._fill()
                continue
            message = _decode(frame)
            if message is not None:
                return message

    def _take_frame(self) -> bytes | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        (size,) = _HEADER.unpack_from(buffer)
        if len(buffer) < 2 + size:
            return None
        frame = bytes(buffer[2 : 2 + size])
        del buffer[: 2 + size]
        return frame

    def _fill(self) -> None:
        if _QUICKACK is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError as exc:
                raise LinkClosed(str(exc)) from exc
        try:
            chunk = self._sock.recv(65538)
        except OSError as exc:
            raise LinkClosed(str(exc)) from exc
        if not chunk:
            raise LinkClosed("reader closed the connection")
        self._buffer += chunk

    def send(self, payload: bytes) -> None:
        try:
            self._sock.sendall(_HEADER.pack(len(payload)) + payload)
        except OSError as exc:
            raise LinkClosed(str(exc)) from exc

    def shutdown(self) -> None:
        """Wake a thread blocked in :meth:`receive` (it gets :class:`LinkClosed`); safe to repeat."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            _log.debug("shutdown on an already closed link")

    def close(self) -> None:
        self.shutdown()
        self._sock.close()


def _decode(frame: bytes) -> Message | None:
    if len(frame) != 1:
        return Message(None, frame)
    try:
        return Message(Control(frame[0]), b"")
    except ValueError:
        _log.warning("unknown vpcd control byte %02X ignored", frame[0])
        return None
