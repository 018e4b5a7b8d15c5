"""BER-TLV parse/build: public vectors, round trips, and every refusal path."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.apdu import tlv
from cardsvc.apdu.tlv import Tlv
from cardsvc.errors import MalformedApdu


def test_emv_record_template_vector() -> None:
    # Vector: coolbong/JavaTlv : src/test/java/DgiTest.java (tlv_dgi_test_001, inner "70" object).
    raw = bytes.fromhex("702057125981786067381230D29125010000000000005F20094B4C53432043415244")
    record = tlv.parse_one(raw)
    assert record.tag == 0x70 and record.constructed and len(record.value) == 32
    track2 = record.find(0x57)
    name = record.find(0x5F20)
    assert track2 is not None and track2.value == bytes.fromhex("5981786067381230D2912501000000000000")
    assert name is not None and name.value == b"KLSC CARD"
    assert record.to_bytes() == raw


def test_three_byte_tag_and_long_length_vector() -> None:
    # Vector: msoliveira11/hash_challenge : src/main.c (runTestData), bytes 15..: tag DF F0 70, length
    # 82 01 00, value 00..FF.
    raw = bytes.fromhex("DFF070820100") + bytes(range(256))
    obj = tlv.parse_one(raw)
    assert obj.tag == 0xDFF070 and not obj.constructed and obj.value == bytes(range(256))
    assert tlv.encode(0xDFF070, bytes(range(256))) == raw


def test_child_overrunning_its_parent_is_refused() -> None:
    # Vector: msoliveira11/hash_challenge : src/main.c (runTestData), bytes 0..14: E1 09 holds C1, C2
    # and a nested E1 04 whose value lies outside the parent's 9 bytes. A lax parser reads on.
    raw = bytes.fromhex("E109C103010203C200E104C302AABB")
    with pytest.raises(MalformedApdu, match="runs past the 9-byte buffer"):
        tlv.parse(raw)
    fixed = bytes.fromhex("E10DC103010203C200E104C302AABB")
    (outer,) = tlv.parse(fixed)
    assert [c.tag for c in outer.children] == [0xC1, 0xC2, 0xE1]
    assert outer.children[2].children[0].value == b"\xaa\xbb"


def test_padding_between_objects_is_skipped() -> None:
    assert tlv.parse(bytes.fromhex("00FF8001AA0000")) == (Tlv(0x80, b"\xaa"),)


@pytest.mark.parametrize(("length", "encoded"), [
    (0, "00"), (127, "7F"), (128, "8180"), (255, "81FF"), (256, "820100"), (65536, "83010000"),
])
def test_length_encoding_is_shortest_form(length: int, encoded: str) -> None:
    assert tlv.encode_length(length) == bytes.fromhex(encoded)


def test_constructed_builder() -> None:
    children = [Tlv(0x84, b"\xa0\x00"), Tlv(0x9F38, b"")]
    assert tlv.encode_constructed(0x6F, children) == bytes.fromhex("6F078402A0009F3800")


@pytest.mark.parametrize(("raw", "reason"), [
    ("8005AABB", "runs past"),                     # value longer than buffer
    ("8080AA0000", "unsupported length form"),      # indefinite length
    ("8085000000000001", "unsupported length form"),  # 5 length bytes
    ("8082FF", "length field truncated"),
    ("80", "length missing"),
    ("9F", "tag truncated"),
    ("9F81", "tag truncated"),
    ("1F80808080800100", "tag"),                   # tag longer than 4 bytes
    ("840FFFFFFFF0", "length"),                    # long form 4 bytes, huge
])
def test_malformed_input_is_refused(raw: str, reason: str) -> None:
    with pytest.raises(MalformedApdu, match=reason):
        tlv.parse(bytes.fromhex(raw))


def test_nesting_depth_is_bounded() -> None:
    raw = b""
    for _ in range(20):
        raw = tlv.encode(0xA0, raw)
    with pytest.raises(MalformedApdu, match="nested deeper than 8"):
        tlv.parse(raw)
    assert tlv.parse(raw, max_depth=21)[0].tag == 0xA0


def test_parse_one_requires_exactly_one() -> None:
    with pytest.raises(MalformedApdu, match="found 2"):
        tlv.parse_one(bytes.fromhex("80008100"))


@pytest.mark.parametrize("tag", [0x1F, 0x9F80, 0x5F8080, 0x0101, -1, 0x1F8181818101])
def test_bad_tags_are_refused_when_building(tag: int) -> None:
    with pytest.raises(MalformedApdu):
        tlv.encode(tag, b"")


_tags = st.sampled_from([0x80, 0x4F, 0x5F20, 0x9F38, 0xDFF070, 0x1F8101])


@given(_tags, st.binary(max_size=600))
def test_primitive_round_trip(tag: int, value: bytes) -> None:
    obj = tlv.parse_one(tlv.encode(tag, value))
    assert (obj.tag, obj.value) == (tag, value)


@given(st.binary(max_size=64))
def test_random_bytes_parse_or_raise_malformed(data: bytes) -> None:
    try:
        objects = tlv.parse(data)
    except MalformedApdu:
        return
    assert sum(len(o.to_bytes()) for o in objects) <= len(data)
