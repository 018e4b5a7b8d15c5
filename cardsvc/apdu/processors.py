"""Small composable processors over a ``transmit(bytes) -> bytes`` callable (ISO/IEC 7816-4).

Each processor wraps a transmit function and returns another one, so they stack::

    transmit = standard_processors(conn.transmit)

- :func:`get_response` — SW ``61xx``: fetch the rest with GET RESPONSE and return it all at once.
- :func:`retry_wrong_le` — SW ``6Cxx``: send the same command again with ``Le = xx``.
- :func:`chain_commands` — command data longer than one short APDU: send it in ISO command-chaining
  frames (CLA bit ``0x10`` on all but the last frame).

Processors never turn a status word into an error: that is the driver's job, in one place. They
raise :class:`~cardsvc.errors.MalformedApdu` only for bytes that are not APDUs, or when the card
keeps a response loop going beyond a fixed bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cardsvc.apdu.model import SW_OK, CommandApdu, ResponseApdu
from cardsvc.errors import MalformedApdu

Transmit = Callable[[bytes], bytes]

INS_GET_RESPONSE = 0xC0
CLA_CHAINING = 0x10
SHORT_MAX_DATA = 255
MAX_RESPONSE_ROUNDS = 256  # 256 x 256 bytes covers any extended response


def get_response(transmit: Transmit, *, max_rounds: int = MAX_RESPONSE_ROUNDS) -> Transmit:
    """Follow ``61xx`` with GET RESPONSE (same logical channel), concatenating the data."""

    def send(apdu: bytes) -> bytes:
        response = ResponseApdu.from_bytes(transmit(apdu))
        if response.sw1 != 0x61:
            return response.to_bytes()
        channel = get_response_cla(apdu[0]) if apdu else 0
        data = bytearray(response.data)
        for _ in range(max_rounds):
            le = response.sw2 or 256
            response = ResponseApdu.from_bytes(transmit(_get_response_apdu(channel, le)))
            data += response.data
            if response.sw1 != 0x61:
                return bytes(data) + response.sw.to_bytes(2, "big")
        raise MalformedApdu(f"card kept answering 61xx after {max_rounds} GET RESPONSE rounds")

    return send


def get_response_cla(cla: int) -> int:
    """The CLA of GET RESPONSE after a command with ``cla``: interindustry, same logical channel.

    First interindustry class (``0x0X``/``0x1X``/``0x2X``/``0x3X``): channel in bits 1–2. Further
    interindustry (``0x4X``–``0x7X``): channel 4–19 in bits 1–4. Proprietary classes (``0x80``–``0xFF``,
    including FMCOS ``80``/``84``, DESFire-native ``90`` and PC/SC pseudo-APDUs ``FF``): basic channel.
    Secure-messaging and chaining bits are never carried over.
    """
    if cla & 0x80:
        return 0x00
    if cla & 0x40:
        return 0x40 | (cla & 0x0F)
    return cla & 0x03


def _get_response_apdu(channel: int, le: int) -> bytes:
    return CommandApdu(channel, INS_GET_RESPONSE, le=le).to_bytes()


def retry_wrong_le(transmit: Transmit) -> Transmit:
    """On ``6Cxx`` send the same command once more with ``Le = xx`` (``00`` means 256)."""

    def send(apdu: bytes) -> bytes:
        raw = transmit(apdu)
        if len(raw) < 2 or raw[-2] != 0x6C:
            return raw
        command = CommandApdu.from_bytes(apdu)
        corrected = replace(command, le=raw[-1] or 256)
        return transmit(corrected.to_bytes())

    return send


def chain_commands(transmit: Transmit, *, max_data: int = SHORT_MAX_DATA) -> Transmit:
    """Send command data longer than ``max_data`` as ISO command chaining (CLA bit 0x10).

    Every frame but the last must be answered ``9000``; any other answer stops the chain and is
    returned as the result. The last frame carries the original Le.
    """
    if not 1 <= max_data <= SHORT_MAX_DATA:
        raise MalformedApdu(f"chain frame size must be 1..{SHORT_MAX_DATA}, got {max_data}")

    def send(apdu: bytes) -> bytes:
        if len(apdu) <= 5 + max_data:  # header + Lc + data can't exceed max_data: no parse needed
            return transmit(apdu)
        command = CommandApdu.from_bytes(apdu)
        if len(command.data) <= max_data:
            return transmit(apdu)
        return _send_chain(transmit, command, max_data)

    return send


def _send_chain(transmit: Transmit, command: CommandApdu, max_data: int) -> bytes:
    if command.cla & CLA_CHAINING:
        raise MalformedApdu("command already has the chaining bit set")
    chunks = [command.data[i : i + max_data] for i in range(0, len(command.data), max_data)]
    chained = command.cla | CLA_CHAINING
    for chunk in chunks[:-1]:
        frame = CommandApdu(chained, command.ins, command.p1, command.p2, data=chunk)
        raw = transmit(frame.to_bytes())
        if ResponseApdu.from_bytes(raw).sw != SW_OK:
            return raw
    last = CommandApdu(command.cla, command.ins, command.p1, command.p2, data=chunks[-1],
                       le=_short_le(command.le))
    return transmit(last.to_bytes())


def _short_le(le: int | None) -> int | None:
    return None if le is None else min(le, 256)


def standard_processors(transmit: Transmit, *, max_data: int = SHORT_MAX_DATA) -> Transmit:
    """The usual stack: chain long commands, retry ``6Cxx``, collect ``61xx``."""
    return chain_commands(get_response(retry_wrong_le(transmit)), max_data=max_data)
