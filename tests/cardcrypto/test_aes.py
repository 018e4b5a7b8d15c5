"""AES helpers: CMAC known answers, NXP truncation, ISO/IEC 9797-1 M2 padding, size checks."""

from __future__ import annotations

import pytest

from cardsvc.cardcrypto import aes
from cardsvc.cardcrypto.crc import jamcrc, nxp_crc32
from cardsvc.errors import CryptoError

H = bytes.fromhex
RFC_KEY = H("2b7e151628aed2a6abf7158809cf4f3c")
RFC_MSG = H(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        # RFC 4493 §4 examples 1-4 (also in Amperstrand/ntag424-vectors : vectors.json)
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ],
)
def test_cmac_rfc4493(length: int, expected: str) -> None:
    assert aes.cmac(RFC_KEY, RFC_MSG[:length]) == H(expected)


def test_cmac_subkeys_rfc4493() -> None:
    # RFC 4493 §4 subkey generation: L, K1, K2 for the same key
    ell = aes.ecb_encrypt(RFC_KEY, bytes(16))
    assert ell == H("7df76b0c1ab899b33e42f047b91b546f")
    assert aes.cmac_subkeys(ell) == (H("fbeed618357133667c85e08f7236a8de"),
                                     H("f7ddac306ae266ccf90bc11ee46d513b"))


def test_truncation_takes_odd_indexes() -> None:
    # AN12196 Table 26 step 16, via drusifer/ntag424_sdm_provisioner : tests/test_crypto_components.py
    assert aes.truncate_mac(H("B7A60161F202EC3489BD4BEDEF64BB32")) == H("A6610234BDED6432")
    with pytest.raises(CryptoError):
        aes.truncate_mac(bytes(8))


@pytest.mark.parametrize(
    ("data", "padded"),
    [(b"", "80" + "00" * 15), (b"\x01" * 15, "01" * 15 + "80"), (b"\x02" * 16, "02" * 16 + "80" + "00" * 15)],
)
def test_pad_m2_round_trip(data: bytes, padded: str) -> None:
    assert aes.pad_m2(data) == H(padded)
    assert aes.unpad_m2(H(padded)) == data


@pytest.mark.parametrize("bad", ["00" * 16, "01" * 16, "80" + "00" * 14, "8000" + "00" * 15 + "01" * 15, ""])
def test_unpad_m2_rejects_malformed(bad: str) -> None:
    with pytest.raises(CryptoError):
        aes.unpad_m2(H(bad))


def test_unpad_rejects_a_whole_block_of_zeros_after_marker() -> None:
    with pytest.raises(CryptoError):
        aes.unpad_m2(b"\x80" + bytes(31))


def test_cbc_round_trip_and_size_checks() -> None:
    iv = bytes(range(16))
    ct = aes.cbc_encrypt(RFC_KEY, iv, RFC_MSG)
    assert aes.cbc_decrypt(RFC_KEY, iv, ct) == RFC_MSG
    assert aes.ecb_decrypt(RFC_KEY, aes.ecb_encrypt(RFC_KEY, RFC_MSG)) == RFC_MSG
    with pytest.raises(CryptoError):
        aes.cbc_encrypt(RFC_KEY, iv, b"short")
    with pytest.raises(CryptoError):
        aes.cbc_encrypt(RFC_KEY, b"short iv", RFC_MSG)
    with pytest.raises(CryptoError):
        aes.cmac(bytes(24), b"")
    with pytest.raises(CryptoError):
        aes.xor(b"ab", b"a")


def test_jamcrc_check_value() -> None:
    # CRC RevEng catalogue, CRC-32/JAMCRC: check = 0x340BC6D9 for "123456789"
    assert jamcrc(b"123456789") == 0x340BC6D9
    assert nxp_crc32(b"123456789") == H("D9C60B34")  # transmitted LSB first
