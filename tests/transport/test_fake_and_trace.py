"""ScriptedConnection's failure modes and the APDU trace redaction table."""

from __future__ import annotations

import logging

import pytest

from cardsvc.errors import CardRemoved, TransportError
from cardsvc.logging import TRACE
from cardsvc.transport import trace
from cardsvc.transport.base import CardConnection
from cardsvc.transport.fake import ScriptedConnection

H = bytes.fromhex


def test_scripted_connection_is_a_card_connection() -> None:
    conn = ScriptedConnection([], atr=H("3B00"), reader="R 00")
    assert isinstance(conn, CardConnection)
    assert (conn.atr, conn.reader) == (H("3B00"), "R 00")


def test_card_removed_at_step_k_and_after() -> None:
    conn = ScriptedConnection([(H("00A4"), H("9000")), (H("00B0"), H("9000"))], remove_at=1)
    assert conn.transmit(H("00A4")) == H("9000")
    for _ in range(2):
        with pytest.raises(CardRemoved, match="APDU 1"):
            conn.transmit(H("00B0"))


def test_extra_apdu_and_unsent_steps_are_reported() -> None:
    conn = ScriptedConnection([(H("00A4"), H("9000"))])
    with pytest.raises(TransportError, match="1 scripted APDUs not sent; next expected 00A4"):
        conn.assert_done()
    conn.transmit(H("00A4"))
    conn.assert_done()
    with pytest.raises(TransportError, match="after the end of the script"):
        conn.transmit(H("00A4"))


def test_closed_connection_refuses() -> None:
    conn = ScriptedConnection([(H("00A4"), H("9000"))])
    conn.close()
    with pytest.raises(TransportError, match="closed"):
        conn.transmit(H("00A4"))


KEY = "00112233445566778899AABBCCDDEEFF"


@pytest.mark.parametrize(("command", "shown"), [
    ("90C4000029" + "00" + KEY * 2 + "0102030405060708", "90C4000029 [redacted 41 bytes] (ChangeKey)"),
    ("0082000108" + KEY[:16], "0082000108 [redacted 8 bytes] (EXTERNAL AUTHENTICATE)"),
    ("0482000108" + KEY[:16], "0482000108 [redacted 8 bytes] (EXTERNAL AUTHENTICATE)"),
    ("80D401001539F0F0AA33" + KEY, "80D4010015 [redacted 21 bytes] (WRITE KEY)"),
    ("84D401001539F0F0AA33" + KEY, "84D4010015 [redacted 21 bytes] (WRITE KEY)"),
    ("90AF000020" + KEY * 2, "90AF000020 [redacted 32 bytes] (additional frame (auth))"),
    ("00B0000010", "00B0000010"),
    ("00D6000004DEADBEEF", "00D6000004DEADBEEF"),
])
def test_command_redaction(command: str, shown: str) -> None:
    assert trace.render_command(H(command)) == shown
    if "redacted" in shown:
        assert KEY[:16] not in trace.render_command(H(command))


def test_response_redaction_keeps_status_word() -> None:
    auth = H("9071000002000000")
    assert trace.render_response(auth, H(KEY) + H("91AF")) == "[redacted 16 bytes] 91AF"
    assert trace.render_response(H("00B0000002"), H("AABB9000")) == "AABB9000"
    assert trace.render_response(auth, H("91AE")) == "91AE"


def test_trace_logging_never_contains_key_bytes(caplog: pytest.LogCaptureFixture) -> None:
    conn = ScriptedConnection([(H("90C400001000") + H(KEY)[:15], H("9100"))])
    with caplog.at_level(TRACE, logger="cardsvc.transport.apdu"):
        assert trace.enabled()
        conn.transmit(H("90C400001000") + H(KEY)[:15])
    text = caplog.text
    assert "90C4000010 [redacted 16 bytes]" in text and "9100" in text
    assert KEY[2:20] not in text


def test_trace_disabled_by_default() -> None:
    logging.getLogger("cardsvc.transport.apdu").setLevel(logging.NOTSET)
    logging.getLogger("cardsvc").setLevel(logging.INFO)
    try:
        assert not trace.enabled()
    finally:
        logging.getLogger("cardsvc").setLevel(logging.NOTSET)
