"""The vpcd bridge and slot runtime against a fake reader: a TCP listener speaking vpcd's side."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.echo import ECHO_ATR, EchoCard
from cardsvc.emulator.images import image_path, save_image
from cardsvc.emulator.runtime import Faults, Slot
from cardsvc.emulator.session import EmulationPlan, build_emulator, queued_cards
from cardsvc.errors import ProfileError


class FakeReader:
    """The vpcd (reader) end: accepts the card's connection and sends controls/APDUs."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(2)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">H", len(payload)) + payload)

    def receive(self) -> bytes:
        assert self.conn is not None
        size = struct.unpack(">H", self._exactly(2))[0]
        return self._exactly(size)

    def _exactly(self, n: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise EOFError("card side closed")
            data += chunk
        return data

    def exchange(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()

    def closed_by_card(self) -> bool:
        assert self.conn is not None
        try:
            return self.conn.recv(1) == b""
        except TimeoutError:
            return False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def reader() -> Iterator[FakeReader]:
    fake = FakeReader()
    yield fake
    fake.close()


def _slot(reader: FakeReader, cards: list[VirtualCard], **kwargs: object) -> Slot:
    slot = Slot(0, reader.port, cards=cards, **kwargs)  # type: ignore[arg-type]
    slot.start()
    reader.accept()
    return slot


def test_controls_atr_and_apdus(reader: FakeReader) -> None:
    card = EchoCard.blank()
    slot = _slot(reader, [card])
    try:
        assert reader.exchange(b"\x04") == ECHO_ATR
        reader.send(b"\x01")  # power on: no answer
        assert reader.exchange(bytes.fromhex("FFCA000000")) == card.uid + b"\x90\x00"
        reader.send(b"\x07")  # unknown control: ignored
        assert reader.exchange(bytes.fromhex("0001000003AABBCC")) == bytes.fromhex("AABBCC9000")
        assert slot.apdus == 2 and card.powered_on >= 2
    finally:
        slot.stop()
    assert reader.closed_by_card()


def test_frames_split_and_batched_are_reassembled(reader: FakeReader) -> None:
    slot = _slot(reader, [EchoCard.blank()])
    try:
        assert reader.conn is not None
        apdu = bytes.fromhex("0001000002CAFE")
        frame = struct.pack(">H", len(apdu)) + apdu
        reader.conn.sendall(frame[:1])
        reader.conn.sendall(frame[1:4])
        reader.conn.sendall(frame[4:] + struct.pack(">H", 1) + b"\x04")
        assert reader.receive() == bytes.fromhex("CAFE9000")
        assert reader.receive() == ECHO_ATR
    finally:
        slot.stop()


def test_tear_after_k_calls_tear_and_removes(reader: FakeReader) -> None:
    card = EchoCard.blank()
    slot = _slot(reader, [card], faults=Faults(tear_after=1))
    removed: list[int] = []
    slot.on_removed = lambda _slot, _card, number: removed.append(number)
    try:
        assert reader.exchange(bytes.fromhex("00D6000001AA")) == b"\x90\x00"
        reader.send(bytes.fromhex("00D6000001BB"))
        assert reader.closed_by_card()
        assert slot.wait_for(lambda: slot.card is None, 2)
        assert card.torn == 1 and card.stored == b"\xaa" and removed == [1]
    finally:
        slot.stop()


def test_mute_after_k_answers_nothing(reader: FakeReader) -> None:
    slot = _slot(reader, [EchoCard.blank()], faults=Faults(mute_after=1))
    try:
        assert reader.exchange(bytes.fromhex("0001000001AA")) == bytes.fromhex("AA9000")
        reader.send(bytes.fromhex("0001000001BB"))
        reader.send(b"\x04")
        assert reader.conn is not None
        reader.conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            reader.receive()
        assert slot.remove() is not None
        assert reader.closed_by_card()  # remove() closed the socket
    finally:
        slot.stop()


def test_feed_swaps_card_after_power_off_following_use(reader: FakeReader) -> None:
    first, second = EchoCard.blank(), EchoCard.blank()
    slot = _slot(reader, [first, second], feed=True)
    try:
        reader.send(b"\x00")  # power off before any APDU: not finished
        assert reader.exchange(bytes.fromhex("FFCA000000"))[:-2] == first.uid
        reader.send(b"\x02")  # reset: still the same card
        assert reader.exchange(bytes.fromhex("FFCA000000"))[:-2] == first.uid
        reader.send(b"\x00")  # power off after use: finished -> next card
        assert reader.closed_by_card()
        reader.conn.close()  # type: ignore[union-attr]
        reader.accept()
        assert reader.exchange(bytes.fromhex("FFCA000000"))[:-2] == second.uid
        reader.send(b"\x00")
        assert reader.closed_by_card()
        assert slot.wait_empty(2) and slot.cards_served == 2
    finally:
        slot.stop()


def test_without_feed_power_off_keeps_the_card(reader: FakeReader) -> None:
    card = EchoCard.blank()
    slot = _slot(reader, [card, EchoCard.blank()])
    try:
        reader.exchange(bytes.fromhex("FFCA000000"))
        reader.send(b"\x00")
        assert reader.exchange(bytes.fromhex("FFCA000000"))[:-2] == card.uid
    finally:
        slot.stop()


def test_reader_closing_keeps_card_for_reconnect(reader: FakeReader) -> None:
    card = EchoCard.blank()
    slot = _slot(reader, [card])
    try:
        reader.exchange(b"\x04")
        reader.conn.close()  # type: ignore[union-attr]  # pcscd went away
        reader.accept()  # ... and is back: the same card reconnects
        assert reader.exchange(bytes.fromhex("FFCA000000"))[:-2] == card.uid
    finally:
        slot.stop()


def test_session_plan_distributes_images_then_blanks(tmp_path: Path) -> None:
    saved = [save_image(EchoCard.blank(), image_path(tmp_path, 0, k, bytes([k] * 7))) for k in (1, 2, 3)]
    plan = EmulationPlan(readers=2, state_dir=tmp_path, load=tuple(saved))
    queues = queued_cards(EchoCard, plan)
    assert [len(q) for q in queues] == [2, 1]
    fed = queued_cards(EchoCard, EmulationPlan(readers=2, state_dir=tmp_path, feed=3, load=tuple(saved)))
    assert [len(q) for q in fed] == [5, 4]
    emulator = build_emulator(EchoCard, plan, [1, 2, 3])
    assert [s.port for s in emulator.slots] == [1, 2] and not emulator.slots[0].feed


def test_session_refuses_images_of_another_family(tmp_path: Path) -> None:
    saved = save_image(EchoCard.blank(), image_path(tmp_path, 0, 1, bytes(7)))
    plan = EmulationPlan(readers=1, state_dir=tmp_path, load=(saved,), family="ntag424")
    with pytest.raises(ProfileError, match="holds a 'echo' card; the profile family is 'ntag424'"):
        queued_cards(EchoCard, plan)
