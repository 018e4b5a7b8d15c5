"""DirectLink: a CardConnection straight into an emulated card (phone taps, benchmarks)."""

from __future__ import annotations

from cardsvc.emulator.direct import DirectLink
from cardsvc.emulator.echo import EchoCard
from cardsvc.transport.base import CardConnection


def test_direct_link_is_a_connection_and_records_on_request() -> None:
    card = EchoCard.blank()
    link = DirectLink(card, reader="phone", record=True)
    assert isinstance(link, CardConnection)
    assert link.atr == card.atr and link.reader == "phone"
    response = link.transmit(bytes.fromhex("00A4040000"))
    assert response[-2:] == b"\x90\x00"
    assert link.sent == [bytes.fromhex("00A4040000")]
    quiet = DirectLink(card)
    quiet.transmit(bytes.fromhex("00A4040000"))
    assert quiet.sent == []
