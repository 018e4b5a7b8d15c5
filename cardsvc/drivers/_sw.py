"""Moving one command APDU and judging its status word: shared by every card driver.

* :func:`exchange` sends a command through the ISO processors (``61xx`` GET RESPONSE, ``6Cxx``
  retry) and logs the command's name and status word at TRACE — never data, keys or cryptograms.
* :class:`StatusTable` is one card family's table of status words that mean something;
  :meth:`StatusTable.check` is the one place a status word becomes a domain error. Nothing above a
  driver compares status words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from cardsvc.apdu import CommandApdu, ResponseApdu, Transmit, get_response, retry_wrong_le
from cardsvc.errors import (
    AccessDenied,
    AuthenticationDelay,
    CardError,
    CardIntegrityError,
    CardStatusError,
    FileNotFound,
    WrongKey,
)
from cardsvc.logging import TRACE, get_logger
from cardsvc.transport.base import CardConnection

log = get_logger(__name__)

_RETRY_COUNTER = 0x63C0  # ISO/IEC 7816-4: 63Cx, verification failed, x tries left
_FOLLOW_UP = (0x61, 0x6C)  # SW1 of "more data: GET RESPONSE" and "wrong Le: resend with Le = SW2"


class Meaning(Enum):
    """What a status word tells the driver."""

    ok = "ok"
    more = "more"  # the card has another frame (NXP native 91AF)
    wrong_key = "wrong_key"
    delay = "delay"
    not_found = "not_found"
    denied = "denied"
    integrity = "integrity"


def exchange(conn: CardConnection, apdu: CommandApdu, what: str) -> ResponseApdu:
    """Send ``apdu``, following 61xx/6Cxx, and return the whole response."""
    command = apdu.to_bytes()
    raw = conn.transmit(command)
    if len(raw) >= 2 and raw[-2] in _FOLLOW_UP:  # rare: the ISO processors finish the exchange
        raw = get_response(retry_wrong_le(_answered(raw, conn.transmit)))(command)
    response = ResponseApdu.from_bytes(raw)
    log.log(TRACE, "%s -> %04X", what, response.sw)
    return response


def _answered(first: bytes, transmit: Transmit) -> Transmit:
    """A transmit whose first call returns the answer already received, then asks the card."""
    pending = [first]

    def send(apdu: bytes) -> bytes:
        return pending.pop() if pending else transmit(apdu)

    return send


@dataclass(frozen=True, slots=True)
class StatusTable:
    """A card family's meaningful status words; ``retry_counter`` reads ISO ``63Cx`` as WrongKey."""

    meanings: Mapping[int, Meaning]
    retry_counter: bool = False

    def meaning(self, sw: int) -> Meaning | None:
        if self.retry_counter and sw & 0xFFF0 == _RETRY_COUNTER:
            return Meaning.wrong_key
        return self.meanings.get(sw)

    def check(self, sw: int, what: str, *, fid: str = "", more: bool = False) -> None:
        """Return for success (and for "more frames" when ``more``); raise the domain error else."""
        meaning = self.meaning(sw)
        if meaning is Meaning.ok or (more and meaning is Meaning.more):
            return
        raise self.error(sw, what, fid=fid)

    def error(self, sw: int, what: str, *, fid: str = "") -> CardError:
        """The :mod:`cardsvc.errors` exception for a status word that is not success."""
        meaning = self.meaning(sw)
        if meaning is Meaning.wrong_key:
            left = sw & 0x0F if self.retry_counter and sw & 0xFFF0 == _RETRY_COUNTER else None
            return WrongKey(f"{what}: authentication failed", sw=sw, attempts_left=left)
        if meaning is Meaning.delay:
            return AuthenticationDelay(f"{what}: the card refuses authentication for now "
                                       "(delay or key locked after failures)", sw=sw)
        if meaning is Meaning.not_found:
            return FileNotFound(f"{what}: no such file, application or key", sw=sw, fid=fid)
        if meaning is Meaning.denied:
            return AccessDenied(f"{what}: security status not satisfied", sw=sw)
        if meaning is Meaning.integrity:
            return CardIntegrityError(f"{what}: the card rejected our MAC or cryptogram (SW {sw:04X})")
        return CardStatusError(f"{what}: unexpected status", sw=sw)
