"""DES / TDES known-answer tests (ECB and CBC, single, two-key and three-key)."""

from __future__ import annotations

import pytest

from cardsvc.cardcrypto import des
from cardsvc.errors import CryptoError

H = bytes.fromhex
NOW = b"Now is the time for all "  # FIPS 81 example plaintext


def test_single_des_fips81_ecb() -> None:
    # FIPS PUB 81 Appendix B (ECB) "Now is the time for all " under 0123456789ABCDEF; also
    # rtyley/spongycastle-old : crypto/jdk1.0/org/bouncycastle/crypto/test/DESedeTest.java (vector 0)
    assert des.ecb_encrypt(H("0123456789abcdef"), NOW) == H(
        "3fa40e8a984d48156a271787ab8883f9893d51ec4b563b53"
    )


def test_single_des_fips81_cbc() -> None:
    # FIPS PUB 81 Appendix C (CBC), IV 1234567890ABCDEF; the same vector is in Bouncy Castle's
    # DESTest ("e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6")
    key, iv = H("0123456789abcdef"), H("1234567890abcdef")
    ct = H("e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6")
    assert des.cbc_encrypt(key, iv, NOW) == ct
    assert des.cbc_decrypt(key, iv, ct) == NOW


def test_two_key_tdes_bouncy_castle() -> None:
    # rtyley/spongycastle-old : crypto/jdk1.0/org/bouncycastle/crypto/test/DESedeTest.java (vector 1)
    key = H("0123456789abcdeffedcba9876543210")
    ct = H("d80a0d8b2bae5e4e6a0094171abcfc2775d2235a706e232c")
    assert des.ecb_encrypt(key, NOW) == ct
    assert des.ecb_decrypt(key, ct) == NOW
    # the 24-byte spelling K1 K2 K1 is the same cipher (DESedeTest vector 3)
    assert des.ecb_encrypt(key + key[:8], NOW) == ct


def test_three_key_tdes_sp800_67_appendix_b() -> None:
    # NIST SP 800-67 Rev. 2 Appendix B: three distinct keys, plaintext spelled as in the standard
    key = H("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
    ct = H("a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900")
    assert des.ecb_encrypt(key, b"The qufck brown fox jump") == ct
    assert des.ecb_decrypt(key, ct) == b"The qufck brown fox jump"


def test_single_des_is_tdes_with_one_key() -> None:
    # NIST SP 800-20 variable-plaintext KAT: key 01..01, plaintext 80 00.. -> 95F8A5E5DD31D900
    assert des.ecb_encrypt(H("0101010101010101"), H("8000000000000000")) == H("95F8A5E5DD31D900")


def test_two_key_tdes_raises_no_warning() -> None:
    # pytest runs with filterwarnings=error: a warning from cryptography would fail this test
    des.cbc_encrypt(bytes(range(16)), des.ZERO_IV, bytes(16))


@pytest.mark.parametrize("key_len", [0, 7, 9, 15, 17, 23, 25, 32])
def test_wrong_key_sizes_are_refused(key_len: int) -> None:
    with pytest.raises(CryptoError, match="DES key"):
        des.ecb_encrypt(bytes(key_len), bytes(8))


def test_partial_blocks_and_bad_iv_are_refused() -> None:
    with pytest.raises(CryptoError, match="multiple of 8"):
        des.ecb_encrypt(bytes(16), bytes(7))
    with pytest.raises(CryptoError, match="multiple of 8"):
        des.cbc_decrypt(bytes(16), des.ZERO_IV, bytes(9))
    with pytest.raises(CryptoError, match="IV"):
        des.cbc_encrypt(bytes(16), bytes(4), bytes(8))
