"""PC/SC return codes map to the cardsvc error tree in one place."""

from __future__ import annotations

import pytest
from smartcard import scard

from cardsvc.errors import CardRemoved, CardTimeout, NoCard, ReaderUnavailable, TransportError
from cardsvc.transport.pcsc import PcscFailure, describe, to_error


@pytest.mark.parametrize(("code", "connecting", "expected"), [
    (scard.SCARD_W_REMOVED_CARD, False, CardRemoved),
    (scard.SCARD_E_NO_SMARTCARD, False, CardRemoved),
    (scard.SCARD_E_NO_SMARTCARD, True, NoCard),
    (scard.SCARD_W_REMOVED_CARD, True, NoCard),
    (scard.SCARD_E_NO_SERVICE, False, ReaderUnavailable),
    (scard.SCARD_E_READER_UNAVAILABLE, False, ReaderUnavailable),
    (scard.SCARD_E_UNKNOWN_READER, True, ReaderUnavailable),
    (scard.SCARD_E_NO_READERS_AVAILABLE, False, ReaderUnavailable),
    (scard.SCARD_E_TIMEOUT, False, CardTimeout),
    (scard.SCARD_W_UNRESPONSIVE_CARD, False, CardTimeout),
    (scard.SCARD_E_SHARING_VIOLATION, True, TransportError),
    (scard.SCARD_W_RESET_CARD, False, TransportError),
])
def test_mapping(code: int, connecting: bool, expected: type[TransportError]) -> None:
    error = to_error(PcscFailure("SCardTransmit", code), reader="R 00", connecting=connecting)
    assert type(error) is expected
    assert error.message.startswith("R 00: SCardTransmit: SCARD_")


def test_describe_names_the_code() -> None:
    assert describe(scard.SCARD_E_NO_SERVICE) == "SCARD_E_NO_SERVICE (0x8010001D)"
    assert describe(0x12345) == "unknown (0x00012345)"
