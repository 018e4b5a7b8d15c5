"""AN10922 key diversification known-answer tests."""

from __future__ import annotations

import pytest

from cardsvc.cardcrypto.an10922 import (
    des_key_version,
    diversification_input,
    diversify_2tdea,
    diversify_3tdea,
    diversify_aes128,
    set_des_key_version,
)
from cardsvc.errors import CryptoError

H = bytes.fromhex
# AN10922 §2.2.1 / §2.4.1 / §2.5.1 inputs, as used in
# nfc-tools/libfreefare : test/test_mifare_key_deriver_an10922.c
MASTER = H("00112233445566778899AABBCCDDEEFF")
UID = H("04782E21801D80")
AID = H("3042F5")


def test_aes128_an10922_section_2_2_1() -> None:
    # nfc-tools/libfreefare : test/test_mifare_key_deriver_an10922.c (aes128);
    # waza-ari/python-desfire : tests/test_diversify.py (test_diversify_nxp_application_note)
    m = diversification_input(uid=UID, aid=AID, system_identifier=b"NXP Abu")
    assert diversify_aes128(MASTER, m) == H("A8DD63A3B89D54B37CA802473FDA9175")


def test_aes128_without_32_byte_padding() -> None:
    # waza-ari/python-desfire : tests/test_diversify.py (test_diversify_no_32_padding)
    m = diversification_input(uid=H("044D0702195E80"), aid=H("DADADA"), system_identifier=H("715517"))
    key = H("83A66CF43605111802A2616FA0C5E2FF")
    assert diversify_aes128(key, m, pad_to_32=False) == H("DAE9B8D3136B2DAE35D58678F378B0B1")
    assert diversify_aes128(key, m) != H("DAE9B8D3136B2DAE35D58678F378B0B1")


def test_aes128_full_32_byte_input_uses_k1() -> None:
    # 01 ‖ 31 bytes needs no padding: AN10922 then equals plain CMAC, in both modes.
    m = bytes(range(31))
    assert diversify_aes128(MASTER, m) == diversify_aes128(MASTER, m, pad_to_32=False)


def test_2tdea_an10922_section_2_4_1() -> None:
    # nfc-tools/libfreefare : test/test_mifare_key_deriver_an10922.c (2k3des)
    m = diversification_input(uid=UID, aid=AID, system_identifier=b"NXP A")
    assert diversify_2tdea(MASTER, m) == H("16F9587D9E8910C96B9649D007107DD6")


def test_3tdea_an10922_section_2_5_1() -> None:
    # nfc-tools/libfreefare : test/test_mifare_key_deriver_an10922.c (3k3des)
    m = diversification_input(uid=UID, aid=AID, system_identifier=b"NXP")
    key = MASTER + H("0102030405060708")
    expected = H("2E0DD03774D3FA9B5705AB0BDA91CA0B55B8E07FCDBF10EC")
    assert diversify_3tdea(key, m) == expected


def test_des_key_version_round_trip() -> None:
    key = set_des_key_version(bytes(16), 0xA5)
    assert des_key_version(key) == 0xA5
    assert key[:8] != key[8:]  # the complement keeps 2TDEA from collapsing into single DES
    assert des_key_version(MASTER) == 0x55


@pytest.mark.parametrize(
    ("func", "key", "m"),
    [
        (diversify_aes128, bytes(15), b"x"),
        (diversify_aes128, bytes(16), b""),
        (diversify_aes128, bytes(16), bytes(32)),
        (diversify_2tdea, bytes(24), b"x"),
        (diversify_2tdea, bytes(16), bytes(16)),
        (diversify_2tdea, bytes(16), b""),
        (diversify_3tdea, bytes(16), b"x"),
    ],
)
def test_rejects_bad_sizes(func, key: bytes, m: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CryptoError):
        func(key, m)
