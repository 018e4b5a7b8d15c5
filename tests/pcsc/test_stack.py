"""End to end through pyscard -> private pcscd -> vpcd -> emulator, with faults."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from cardsvc.emulator.base import VirtualCard
from cardsvc.emulator.echo import ECHO_ATR, EchoCard
from cardsvc.emulator.images import image_path, load_image, save_image
from cardsvc.emulator.runtime import Faults, Slot
from cardsvc.errors import CardRemoved, CardTimeout, NoCard, ReaderUnavailable, TransportError
from cardsvc.logging import TRACE
from cardsvc.transport import clientsocket, pcsc

pytestmark = pytest.mark.pcsc

GET_UID = bytes.fromhex("FFCA000000")


def test_two_readers_listed_with_atr(pcsc_stack) -> None:
    stack = pcsc_stack(2)
    cards = [EchoCard.blank(), EchoCard.blank()]
    stack.emulate([[cards[0]], [cards[1]]])
    readers = pcsc.list_readers()
    assert [r.name for r in readers] == stack.reader_names
    assert all(r.atr == ECHO_ATR for r in readers)
    for name, card in zip(stack.reader_names, cards, strict=True):
        with pcsc.connect(name) as conn:
            assert conn.atr == ECHO_ATR and conn.reader == name
            assert conn.transmit(GET_UID) == card.uid + b"\x90\x00"


def test_empty_reader_and_unknown_reader(pcsc_stack) -> None:
    stack = pcsc_stack(2)
    stack.emulate([[EchoCard.blank()], []])
    assert pcsc.list_readers()[1].atr is None
    with pytest.raises(NoCard):
        pcsc.connect(stack.reader_names[1])
    started = time.monotonic()
    with pytest.raises(NoCard, match=r"no card within 0\.3 s"):
        pcsc.wait_for_card(stack.reader_names[1], 0.3)
    assert time.monotonic() - started < 1.5
    with pytest.raises(ReaderUnavailable):
        pcsc.connect("No Such Reader 00 00")
    with pytest.raises(ReaderUnavailable):
        pcsc.wait_for_card("No Such Reader 00 00", 0.5)
    with pytest.raises(CardTimeout, match="still present"):
        pcsc.wait_for_removal(stack.reader_names[0], 0.3)


def test_card_pulled_mid_command_raises_card_removed(pcsc_stack) -> None:
    stack = pcsc_stack(1)
    card = EchoCard.blank()
    stack.emulate([[card]], faults=Faults(tear_after=2))
    conn = pcsc.connect(stack.reader_names[0])
    assert conn.transmit(GET_UID)[:-2] == card.uid
    assert conn.transmit(bytes.fromhex("00D6000002CAFE")) == b"\x90\x00"
    with pytest.raises(CardRemoved, match="removed during the command"):
        conn.transmit(bytes.fromhex("00D6000002BEEF"))
    with pytest.raises(CardRemoved):
        conn.transmit(GET_UID)
    conn.close()
    assert card.torn == 1 and card.stored == bytes.fromhex("CAFE")
    pcsc.wait_for_removal(stack.reader_names[0], 2.0)
    slot = stack.slot(0)
    slot.faults = Faults()
    slot.insert(card)  # put the same card back: it kept what it had committed
    pcsc.wait_for_card(stack.reader_names[0], 3.0)
    with pcsc.connect(stack.reader_names[0]) as again:
        assert again.transmit(bytes.fromhex("00B0000000")) == bytes.fromhex("CAFE9000")


@pytest.mark.parametrize("guard", ["watchdog", "worker thread"])
def test_mute_card_times_out_without_hanging(pcsc_stack, monkeypatch: pytest.MonkeyPatch,
                                             guard: str) -> None:
    if guard == "worker thread":  # the fallback when the context's socket cannot be told
        monkeypatch.setattr(clientsocket, "only_unix_stream", lambda _fds: None)
    stack = pcsc_stack(1)
    stack.emulate([[EchoCard.blank()]], faults=Faults(mute_after=1))
    conn = pcsc.connect(stack.reader_names[0], timeout_s=0.5)
    assert conn.guarded_by == guard
    conn.transmit(GET_UID)
    started = time.monotonic()
    with pytest.raises(CardTimeout, match=r"did not answer within 0\.5 s"):
        conn.transmit(GET_UID)
    assert time.monotonic() - started < 2.0  # 0.5 s timeout + scheduling slack
    with pytest.raises(CardTimeout):
        conn.transmit(GET_UID)
    conn.close()  # never blocks on the stuck handle
    assert time.monotonic() - started < 2.5  # close() does not wait for the stuck call
    stack.slot(0).remove()  # unsticks pcscd; the stack tears down cleanly


def test_pcscd_gone_is_reader_unavailable(pcsc_stack) -> None:
    stack = pcsc_stack(1)
    stack.emulate([[EchoCard.blank()]])
    conn = pcsc.connect(stack.reader_names[0])
    stack.pcscd.stop()
    with pytest.raises(ReaderUnavailable):
        conn.transmit(GET_UID)
    conn.close()
    with pytest.raises(ReaderUnavailable, match="SCARD_E_NO_SERVICE"):
        pcsc.list_readers()
    with pytest.raises(ReaderUnavailable):
        pcsc.connect(stack.reader_names[0])


def test_feed_presents_m_distinct_cards(pcsc_stack, tmp_path: Path) -> None:
    stack = pcsc_stack(2)
    saved: list[Path] = []

    def on_removed(slot: Slot, card: VirtualCard, number: int) -> None:
        saved.append(save_image(card, image_path(tmp_path, slot.index, number, card.uid)))

    stack.emulate([[EchoCard.blank() for _ in range(3)], [EchoCard.blank() for _ in range(2)]],
                  feed=True, on_removed=on_removed)
    seen: dict[str, list[bytes]] = {}
    for name, count in zip(stack.reader_names, (3, 2), strict=True):
        for _ in range(count):
            pcsc.wait_for_card(name, 5.0)
            with pcsc.connect(name) as conn:
                seen.setdefault(name, []).append(conn.transmit(GET_UID)[:-2])
            pcsc.wait_for_removal(name, 5.0)
    uids = [uid for per_reader in seen.values() for uid in per_reader]
    assert len(uids) == 5 and len(set(uids)) == 5
    assert all(stack.slot(i).wait_empty(2.0) for i in range(2))
    assert sorted(p.name.split("-")[0] for p in saved) == ["0", "0", "0", "1", "1"]
    with pytest.raises(NoCard):
        pcsc.wait_for_card(stack.reader_names[0], 0.5)


def test_saved_image_reloads_with_same_uid(pcsc_stack, tmp_path: Path) -> None:
    stack = pcsc_stack(1)
    card = EchoCard.blank()
    stack.emulate([[card]])
    with pcsc.connect(stack.reader_names[0]) as conn:
        conn.transmit(bytes.fromhex("00D600000401020304"))
    removed = stack.slot(0).remove()
    assert removed is card
    pcsc.wait_for_removal(stack.reader_names[0], 2.0)
    path = save_image(card, image_path(tmp_path, 0, 1, card.uid))
    assert path.name == f"0-1-{card.uid.hex().upper()}.json"
    reloaded = load_image(path)
    stack.slot(0).insert(reloaded)
    pcsc.wait_for_card(stack.reader_names[0], 3.0)
    with pcsc.connect(stack.reader_names[0]) as conn:
        assert conn.transmit(GET_UID)[:-2] == card.uid
        assert conn.transmit(bytes.fromhex("00B0000000")) == bytes.fromhex("010203049000")


def test_failed_exchange_with_card_still_present_is_transport_error(pcsc_stack) -> None:
    stack = pcsc_stack(1)
    stack.emulate([[EchoCard.blank()]])
    conn = pcsc.connect(stack.reader_names[0])
    conn.close()
    with pytest.raises(TransportError, match="closed"):
        conn.transmit(GET_UID)


def test_exclusive_connection_blocks_a_second_one(pcsc_stack) -> None:
    stack = pcsc_stack(1)
    stack.emulate([[EchoCard.blank()]])
    with pcsc.connect(stack.reader_names[0], exclusive=True) as first:
        with pytest.raises(TransportError, match="SHARING_VIOLATION"):
            pcsc.connect(stack.reader_names[0])
        assert first.transmit(GET_UID)[-2:] == b"\x90\x00"
    with pcsc.connect(stack.reader_names[0]) as again:
        assert again.transmit(GET_UID)[-2:] == b"\x90\x00"


def test_apdu_trace_through_pcsc_redacts_keys(pcsc_stack, caplog: pytest.LogCaptureFixture) -> None:
    stack = pcsc_stack(1)
    stack.emulate([[EchoCard.blank()]])
    key = bytes(range(0xA0, 0xB0))
    with caplog.at_level(TRACE, logger="cardsvc.transport.apdu"), \
            pcsc.connect(stack.reader_names[0]) as conn:
        conn.transmit(bytes.fromhex("90C4000011") + b"\x01" + key)  # echo card answers data ‖ 9000
    sent = [r.getMessage() for r in caplog.records if " > " in r.getMessage()]
    answered = [r.getMessage() for r in caplog.records if " < " in r.getMessage()]
    assert sent == [f"{stack.reader_names[0]} > 90C4000011 [redacted 17 bytes] (ChangeKey)"]
    # the echo card sends the key back; a real ChangeKey answer is only a MAC, which is not secret
    assert re.search(r" < [0-9A-F]*9000 \(\d+ us\)$", answered[0])
