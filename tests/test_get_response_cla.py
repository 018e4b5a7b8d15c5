"""GET RESPONSE goes to the command's logical channel, and to the basic channel after proprietary classes."""

from __future__ import annotations

import pytest

from cardsvc.apdu.processors import get_response, get_response_cla


@pytest.mark.parametrize(
    ("cla", "expected"),
    [
        (0x00, 0x00), (0x01, 0x01), (0x03, 0x03), (0x0C, 0x00), (0x1F, 0x03),  # first interindustry
        (0x40, 0x40), (0x4F, 0x4F), (0x6A, 0x4A),  # further interindustry: channel bits kept, SM dropped
        (0x80, 0x00), (0x84, 0x00), (0x90, 0x00), (0xFF, 0x00),  # proprietary, PC/SC pseudo-APDU
    ],
)
def test_get_response_class(cla: int, expected: int) -> None:
    assert get_response_cla(cla) == expected


def test_pseudo_apdu_uid_is_followed_on_the_basic_channel() -> None:
    sent: list[bytes] = []
    answers = iter([bytes.fromhex("6107"), bytes.fromhex("04A1B2C3D4E5F69000")])

    def transmit(apdu: bytes) -> bytes:
        sent.append(apdu)
        return next(answers)

    assert get_response(transmit)(bytes.fromhex("FFCA000000")).hex() == "04a1b2c3d4e5f69000"
    assert sent[1] == bytes.fromhex("00C0000007")
