"""CommandApdu / ResponseApdu: the four ISO 7816-4 cases, short and extended, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.apdu import CommandApdu, ResponseApdu
from cardsvc.errors import MalformedApdu


@pytest.mark.parametrize(
    ("apdu", "wire"),
    [
        (CommandApdu(0x00, 0xA4, 0x04, 0x00), "00A40400"),  # case 1
        (CommandApdu(0x00, 0x84, le=8), "0084000008"),  # case 2 short
        (CommandApdu(0x00, 0xB0, le=256), "00B0000000"),  # Le=256 encodes as 00
        (CommandApdu(0x00, 0xA4, 4, 0, bytes.fromhex("D2760000850101")), "00A4040007D2760000850101"),
        (CommandApdu(0x90, 0x60, le=256), "9060000000"),
        (CommandApdu(0x00, 0xB0, data=b"\x01", le=2), "00B00000010102"),  # case 4 short
        (CommandApdu(0x00, 0xB0, le=300), "00B00000" + "00012C"),  # case 2 extended
        (CommandApdu(0x00, 0xD6, data=b"\xaa" * 300), "00D60000" + "00012C" + "AA" * 300),
        (CommandApdu(0x00, 0xD6, data=b"\xaa" * 300, le=65536), "00D60000" + "00012C" + "AA" * 300 + "0000"),
    ],
)
def test_encoding_matches_iso7816(apdu: CommandApdu, wire: str) -> None:
    assert apdu.to_bytes().hex().upper() == wire.upper()
    assert CommandApdu.from_bytes(apdu.to_bytes()) == CommandApdu.from_bytes(bytes.fromhex(wire))


@given(
    header=st.tuples(*(st.integers(0, 255) for _ in range(4))),
    data=st.binary(max_size=600),
    le=st.none() | st.integers(1, 65536),
)
def test_round_trip(header: tuple[int, int, int, int], data: bytes, le: int | None) -> None:
    apdu = CommandApdu(*header, data=data, le=le)
    parsed = CommandApdu.from_bytes(apdu.to_bytes())
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data) == (*header, data)
    assert parsed.le == le


@pytest.mark.parametrize(
    "wire",
    ["", "00A4", "00A404", "00A4040005AABB", "00A4040002AABBCCDD", "00D60000000005AA"],
)
def test_malformed_commands_raise_typed_error(wire: str) -> None:
    with pytest.raises(MalformedApdu):
        CommandApdu.from_bytes(bytes.fromhex(wire))


def test_field_ranges_are_checked() -> None:
    with pytest.raises(MalformedApdu, match="cla"):
        CommandApdu(0x100, 0)
    with pytest.raises(MalformedApdu, match="Le"):
        CommandApdu(0, 0, le=70000)
    with pytest.raises(MalformedApdu, match="too long"):
        CommandApdu(0, 0, data=b"\x00" * 65536)


def test_response_parsing() -> None:
    response = ResponseApdu.from_bytes(bytes.fromhex("0102039000"))
    assert response.data == b"\x01\x02\x03" and response.ok and response.sw1 == 0x90
    assert ResponseApdu.from_bytes(bytes.fromhex("91AF")).sw == 0x91AF
    assert response.to_bytes().hex() == "0102039000"
    with pytest.raises(MalformedApdu):
        ResponseApdu.from_bytes(b"\x90")
