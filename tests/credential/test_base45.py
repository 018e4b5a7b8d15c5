"""Base45 codec against RFC 9285 and its refusal of bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.credential.base45 import b45decode, b45encode
from cardsvc.errors import MalformedCredential

# RFC 9285 §4.3 (encoding examples) and §4.4 (decoding example).
RFC_9285_EXAMPLES = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
]


@pytest.mark.parametrize(("data", "text"), RFC_9285_EXAMPLES)
def test_rfc_9285_examples(data: bytes, text: str) -> None:
    assert b45encode(data) == text
    assert b45decode(text) == data


def test_largest_triple_and_pair_decode() -> None:
    assert b45decode("FGW") == b"\xff\xff"  # 15 + 16·45 + 32·45² = 65535
    assert b45decode("U5") == b"\xff"  # 30 + 5·45 = 255


@pytest.mark.parametrize(
    "text",
    [
        "GGW",  # RFC 9285 §6: 65536 does not fit two bytes
        ":::",  # 44 + 44·45 + 44·2025 = 91124
        "V5",  # 31 + 5·45 = 256 does not fit one byte
        "A",  # a single trailing character
        "ABCD",  # 3 + 1 characters
        "abc",  # lower case is outside the alphabet
        "AB\n",
        "ÄBC",  # non-ASCII
        "AB#",
    ],
)
def test_bad_base45_is_refused_with_reason(text: str) -> None:
    with pytest.raises(MalformedCredential) as info:
        b45decode(text)
    assert info.value.reason == "base45"


@given(st.binary(max_size=300))
def test_round_trip(data: bytes) -> None:
    text = b45encode(data)
    assert len(text) == 3 * (len(data) // 2) + 2 * (len(data) % 2)
    assert b45decode(text) == data


@given(st.text(max_size=200))
def test_decode_raises_only_typed_errors(text: str) -> None:
    try:
        b45decode(text)
    except MalformedCredential as exc:
        assert exc.reason == "base45"
