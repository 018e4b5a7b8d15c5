"""ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) and padding method 2."""

from __future__ import annotations

import pytest

from cardsvc.cardcrypto import des
from cardsvc.cardcrypto.padding import pad_method2, unpad_method2
from cardsvc.cardcrypto.retail_mac import retail_mac
from cardsvc.errors import CryptoError

H = bytes.fromhex


def test_retail_mac_pyemv_vector() -> None:
    # knovichikhin/pyemv : tests/test_mac.py (test_mac_iso9797_3, padding method 2):
    # K = AA..AA, K' = BB..BB, "hello world" -> 2BC2D9EDE0CF31F6
    assert retail_mac(H("AA" * 8 + "BB" * 8), b"hello world") == H("2BC2D9EDE0CF31F6")


def test_retail_mac_fmcos_vector_with_challenge_iv() -> None:
    # klks/fmcos-python : examples/test_mac.py (first case): IV = 44A47DEB ‖ 00000000, key FF*16
    data = H("04d6000014112233445566778899 00aabbccddeeff".replace(" ", ""))
    assert retail_mac(b"\xff" * 16, data, H("44a47deb00000000"))[:4] == H("f2f62231")


def test_retail_mac_equals_its_definition() -> None:
    # Algorithm 3 = single-DES CBC under K, then E(K, D(K', last)); with K = K' it collapses
    # to plain single-DES CBC-MAC, the defining property of the EDE finish.
    key = bytes(range(8)) * 2
    message = b"fmcos line protection"
    cbc = des.cbc_encrypt(key[:8], des.ZERO_IV, pad_method2(message, 8))
    assert retail_mac(key, message) == cbc[-8:]


def test_mac_depends_on_iv_and_every_byte() -> None:
    key = bytes(range(16))
    base = retail_mac(key, b"abcdefgh")
    assert retail_mac(key, b"abcdefgi") != base
    assert retail_mac(key, b"abcdefgh", H("0000000100000000")) != base


@pytest.mark.parametrize("n", range(17))
def test_pad_method2_always_pads(n: int) -> None:
    # knovichikhin/pyemv : tests/test_mac.py (test_pad_iso9797_2): a full block gains a block
    padded = pad_method2(b"F" * n, 8)
    assert len(padded) % 8 == 0 and len(padded) > n
    assert padded == b"F" * n + b"\x80" + bytes(len(padded) - n - 1)
    assert unpad_method2(padded, 8) == b"F" * n


@pytest.mark.parametrize("bad", [b"", b"\x00" * 8, b"abcdefg\x81", b"\x80" + bytes(15), b"abc"])
def test_unpad_refuses_missing_padding(bad: bytes) -> None:
    with pytest.raises(CryptoError):
        unpad_method2(bad, 8)


def test_key_must_be_two_des_keys() -> None:
    with pytest.raises(CryptoError, match="16 bytes"):
        retail_mac(bytes(8), b"x")
    with pytest.raises(CryptoError, match="IV"):
        retail_mac(bytes(16), b"x", bytes(4))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 40, 129])
def test_two_context_form_equals_the_textbook_three_steps(n: int) -> None:
    # ISO/IEC 9797-1 MAC algorithm 3 as written: CBC under K over every block, then D(K'), E(K)
    key, iv = bytes(range(3, 19)), H("0102030400000000")
    message = bytes(range(n))
    chained = des.cbc_encrypt(key[:8], iv, pad_method2(message, 8))[-8:]
    textbook = des.ecb_encrypt(key[:8], des.ecb_decrypt(key[8:], chained))
    assert retail_mac(key, message, iv) == textbook
