"""The NTAG 424 DNA status-word table (NT4H2421Gx §10.2 native codes, ISO-wrapped as 91xx)."""

from __future__ import annotations

from typing import Any

import pytest

from cardsvc.apdu import CommandApdu
from cardsvc.drivers._sw import exchange
from cardsvc.drivers.ntag424 import NTAG424_SW
from cardsvc.errors import (
    AccessDenied,
    AuthenticationDelay,
    CardIntegrityError,
    CardStatusError,
    FileNotFound,
    WrongKey,
)
from cardsvc.logging import TRACE
from cardsvc.transport.fake import ScriptedConnection

H = bytes.fromhex


@pytest.mark.parametrize(
    ("sw", "error"),
    [
        (0x91AE, WrongKey),  # AUTHENTICATION_ERROR
        (0x91AD, AuthenticationDelay),  # AUTHENTICATION_DELAY
        (0x91F0, FileNotFound),  # FILE_NOT_FOUND
        (0x9140, FileNotFound),  # NO_SUCH_KEY
        (0x6A82, FileNotFound),  # ISO: file or application not found
        (0x919D, AccessDenied),  # PERMISSION_DENIED
        (0x6982, AccessDenied),  # ISO: security status not satisfied
        (0x911E, CardIntegrityError),  # INTEGRITY_ERROR: the card rejected our MAC
        (0x917E, CardStatusError),  # LENGTH_ERROR: nothing more specific
        (0x91BE, CardStatusError),  # BOUNDARY_ERROR
        (0x63C2, CardStatusError),  # ISO retry counter means nothing on this chip
    ],
)
def test_status_words_become_typed_errors(sw: int, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        NTAG424_SW.check(sw, "ReadData 03")
    assert type(caught.value) is error
    assert "ReadData 03" in str(caught.value)
    err: Any = caught.value
    if isinstance(err, WrongKey):
        assert err.attempts_left is None  # the chip does not say


def test_success_and_more_frames() -> None:
    NTAG424_SW.check(0x9000, "select")
    NTAG424_SW.check(0x9100, "GetVersion")
    NTAG424_SW.check(0x91AF, "GetVersion", more=True)
    with pytest.raises(CardStatusError):
        NTAG424_SW.check(0x91AF, "ChangeKey")  # another frame where none may come


def test_exchange_traces_name_and_sw_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(TRACE, logger="cardsvc")
    secret = H("00112233445566778899AABBCCDDEEFF")
    conn = ScriptedConnection([(H("90AF000010") + secret + H("00"), secret + H("9100"))])
    response = exchange(conn, CommandApdu(0x90, 0xAF, data=secret, le=256), "authenticate key 0")
    assert response.data == secret and response.sw == 0x9100
    ours = [r.getMessage() for r in caplog.records if r.name == "cardsvc.drivers._sw"]
    assert ours == ["authenticate key 0 -> 9100"]
    assert all(r.levelno == TRACE for r in caplog.records)
    assert secret.hex().upper() not in caplog.text.upper()


def test_exchange_follows_61xx_and_6cxx_for_native_commands() -> None:
    # a reader that splits a long answer (61xx) and one that wants the exact Le (6Cxx)
    conn = ScriptedConnection([
        (H("9060000000"), H("0404023061 07")),
        (H("00C0000007"), H("00110591AF")),
        (H("90AD0000070200000002000000"), H("6C02")),
        (H("90AD0000070200000002000002"), H("00179100")),
    ])
    first = exchange(conn, CommandApdu(0x90, 0x60, le=256), "GetVersion")
    assert (first.data, first.sw) == (H("04040230001105"), 0x91AF)
    command = CommandApdu(0x90, 0xAD, data=H("02000000020000"), le=256)
    second = exchange(conn, command, "ReadData")
    assert (second.data, second.sw) == (H("0017"), 0x9100)
    conn.assert_done()
