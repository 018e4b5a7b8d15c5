"""Response/command processors against scripted cards: exact bytes on the wire."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.apdu import chain_commands, get_response, retry_wrong_le, standard_processors
from cardsvc.errors import MalformedApdu, TransportError
from cardsvc.transport.fake import ScriptedConnection

H = bytes.fromhex


def test_get_response_accumulates_61xx() -> None:
    conn = ScriptedConnection([
        (H("00A4040007A0000000031010"), H("AABB6104")),
        (H("00C0000004"), H("CCDDEEFF6102")),
        (H("00C0000002"), H("11229000")),
    ])
    assert get_response(conn.transmit)(H("00A4040007A0000000031010")) == H("AABBCCDDEEFF11229000")
    conn.assert_done()


def test_get_response_keeps_logical_channel_and_61_00_means_256() -> None:
    conn = ScriptedConnection([(H("01B0000000"), H("6100")), (H("01C0000000"), bytes(256) + H("9000"))])
    assert get_response(conn.transmit)(H("01B0000000")) == bytes(256) + H("9000")


def test_get_response_passes_through_other_status_words() -> None:
    conn = ScriptedConnection([(H("00B0000010"), H("6A82"))])
    assert get_response(conn.transmit)(H("00B0000010")) == H("6A82")


def test_get_response_final_error_status_is_returned_not_raised() -> None:
    conn = ScriptedConnection([(H("00B0000000"), H("016101")), (H("00C0000001"), H("6F00"))])
    assert get_response(conn.transmit)(H("00B0000000")) == H("016F00")


def test_get_response_loop_is_bounded() -> None:
    script = [(H("00CA000000"), H("6101"))] + [(H("00C0000001"), H("006101"))] * 3
    conn = ScriptedConnection(script)
    with pytest.raises(MalformedApdu, match="3 GET RESPONSE rounds"):
        get_response(conn.transmit, max_rounds=3)(H("00CA000000"))


def test_retry_wrong_le_resends_with_corrected_le() -> None:
    conn = ScriptedConnection([(H("00B0000000"), H("6C08")), (H("00B0000008"), H("01020304050607089000"))])
    assert retry_wrong_le(conn.transmit)(H("00B0000000")) == H("01020304050607089000")
    conn.assert_done()


def test_retry_wrong_le_retries_once_only() -> None:
    conn = ScriptedConnection([(H("00B0000010"), H("6C08")), (H("00B0000008"), H("6C04"))])
    assert retry_wrong_le(conn.transmit)(H("00B0000010")) == H("6C04")


def test_chaining_splits_long_data() -> None:
    data = bytes(range(256)) + bytes(44)  # 300 bytes
    long_apdu = H("00DA0102") + H("00012C") + data  # extended form
    conn = ScriptedConnection([
        (H("10DA0102FF") + data[:255], H("9000")),
        (H("00DA01022D") + data[255:], H("9000")),
    ])
    assert chain_commands(conn.transmit)(long_apdu) == H("9000")
    conn.assert_done()


def test_chaining_small_frames_and_le_on_last_frame_only() -> None:
    conn = ScriptedConnection([
        (H("10D6000004") + b"abcd", H("9000")),
        (H("00D600000265660A"), H("01029000")),
    ])
    apdu = H("00D6000006") + b"abcdef" + H("0A")
    assert chain_commands(conn.transmit, max_data=4)(apdu) == H("01029000")


def test_chaining_stops_at_first_error() -> None:
    conn = ScriptedConnection([(H("10D6000004") + b"abcd", H("6982"))])
    assert chain_commands(conn.transmit, max_data=4)(H("00D6000006") + b"abcdef") == H("6982")
    assert len(conn.sent) == 1  # the second frame was never sent


def test_short_commands_pass_untouched() -> None:
    conn = ScriptedConnection([(H("00D6000004") + b"abcd", H("9000"))])
    assert chain_commands(conn.transmit, max_data=4)(H("00D6000004") + b"abcd") == H("9000")


def test_chaining_refuses_already_chained_command_and_bad_frame_size() -> None:
    conn = ScriptedConnection([])
    with pytest.raises(MalformedApdu, match="chaining bit"):
        chain_commands(conn.transmit, max_data=4)(H("10D6000006") + b"abcdef")
    with pytest.raises(MalformedApdu, match="frame size"):
        chain_commands(conn.transmit, max_data=0)


def test_standard_stack_combines_all_three() -> None:
    conn = ScriptedConnection([
        (H("10DB000004") + b"abcd", H("9000")),
        (H("00DB00000265660A"), H("6C02")),
        (H("00DB000002656602"), H("6101")),
        (H("00C0000001"), H("7A9000")),
    ])
    send = standard_processors(conn.transmit, max_data=4)
    assert send(H("00DB000006") + b"abcdef" + H("0A")) == H("7A9000")
    conn.assert_done()


def test_processors_refuse_garbage_responses() -> None:
    conn = ScriptedConnection([(H("00B0000000"), H("90"))])
    with pytest.raises(MalformedApdu, match="shorter than a status word"):
        get_response(conn.transmit)(H("00B0000000"))


def test_scripted_mismatch_is_a_transport_error() -> None:
    conn = ScriptedConnection([(H("00B0000000"), H("9000"))])
    with pytest.raises(TransportError, match="expected 00B0000000, got 00B0000001"):
        standard_processors(conn.transmit)(H("00B0000001"))


@given(data=st.binary(min_size=1, max_size=700), chunk=st.integers(min_value=1, max_value=256))
def test_get_response_reassembles_any_chunking(data: bytes, chunk: int) -> None:
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    script = []
    command = H("00CA000000")
    for index, piece in enumerate(pieces):
        remaining = len(data) - sum(len(p) for p in pieces[: index + 1])
        sw = H("9000") if remaining == 0 else bytes((0x61, min(remaining, 256) % 256))
        script.append((command, piece + sw))
        command = H("00C00000") + bytes((min(remaining, 256) % 256,))
    conn = ScriptedConnection(script)
    assert get_response(conn.transmit)(H("00CA000000")) == data + H("9000")
    conn.assert_done()
