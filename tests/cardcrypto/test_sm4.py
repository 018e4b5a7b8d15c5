"""SM4 known answers and the SM4 cipher suite (ASSUMPTION for FMCOS: see cardcrypto.sm4)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cardsvc.cardcrypto import sm4
from cardsvc.cardcrypto.fmcos import auth_cryptogram, line_mac, suite
from cardsvc.cardcrypto.padding import pad_method2
from cardsvc.errors import CryptoError

H = bytes.fromhex
GB_KEY = H("0123456789abcdeffedcba9876543210")


def test_sm4_gbt_32907_example_1() -> None:
    # GB/T 32907-2016 Appendix A, example 1: key = plaintext = 0123456789abcdeffedcba9876543210
    ct = H("681edf34d206965e86b3e94f536e4246")
    assert sm4.ecb_encrypt(GB_KEY, GB_KEY) == ct
    assert sm4.ecb_decrypt(GB_KEY, ct) == GB_KEY


def test_sm4_gbt_32907_example_2_million_rounds() -> None:
    # GB/T 32907-2016 Appendix A, example 2: the same plaintext encrypted 1 000 000 times
    enc = Cipher(algorithms.SM4(GB_KEY), modes.ECB()).encryptor()  # noqa: S305
    block = GB_KEY
    for _ in range(1_000_000):
        block = enc.update(block)
    assert block == H("595298c7c6fd271f0402f804c33d3f66")
    assert sm4.ecb_encrypt(GB_KEY, GB_KEY) != block  # and our wrapper agrees on one round


def test_cbc_mac_is_last_cbc_block_over_method2_padding() -> None:
    iv = H("11223344") + bytes(12)
    data = b"x" * 20
    cbc = Cipher(algorithms.SM4(GB_KEY), modes.CBC(iv)).encryptor()
    expected = (cbc.update(pad_method2(data, 16)) + cbc.finalize())[-16:]
    assert sm4.cbc_mac(GB_KEY, data, iv) == expected


def test_sm4_suite_behind_the_same_interface() -> None:
    cs = suite("sm4")
    assert (cs.name, cs.block_size, cs.key_size) == ("sm4", 16, 16)
    challenge = H("0102030405060708")
    assert auth_cryptogram(cs, GB_KEY, challenge) == sm4.ecb_encrypt(GB_KEY, challenge + bytes(8))
    mac = line_mac(cs, GB_KEY, b"\x04\xd6\x00\x00\x05\xaa", H("01020304"))
    assert mac == sm4.cbc_mac(GB_KEY, b"\x04\xd6\x00\x00\x05\xaa", H("01020304") + bytes(12))[:4]


def test_sm4_refuses_bad_sizes() -> None:
    with pytest.raises(CryptoError, match="SM4 key"):
        sm4.ecb_encrypt(bytes(8), bytes(16))
    with pytest.raises(CryptoError, match="multiple of 16"):
        sm4.ecb_encrypt(GB_KEY, bytes(8))
    with pytest.raises(CryptoError, match="IV"):
        sm4.cbc_mac(GB_KEY, b"x", bytes(8))
