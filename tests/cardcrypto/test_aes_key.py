"""AesKey (contexts made once per session) gives exactly the module functions' results."""

from __future__ import annotations

import os

import pytest

from cardsvc.cardcrypto import aes
from cardsvc.errors import CryptoError


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 33, 48, 100, 128, 160])
def test_cmac_matches_the_reference_for_every_length(size: int) -> None:
    key, data = os.urandom(16), os.urandom(size)
    assert aes.AesKey(key).cmac(data) == aes.cmac(key, data)
    assert aes.AesKey(key).cmac_t(data) == aes.cmac_t(key, data)


@pytest.mark.parametrize("blocks", [1, 2, 3, 9])
def test_ecb_and_cbc_match_the_reference(blocks: int) -> None:
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(16 * blocks)
    prepared = aes.AesKey(key)
    for _ in range(2):  # reused contexts keep no state between calls
        assert prepared.ecb_encrypt(data) == aes.ecb_encrypt(key, data)
        assert prepared.cbc_encrypt(iv, data) == aes.cbc_encrypt(key, iv, data)
        assert prepared.cbc_decrypt(iv, data) == aes.cbc_decrypt(key, iv, data)


def test_sp800_38b_example_2() -> None:
    # NIST SP 800-38B, Appendix D.1 (AES-128), Example 2: Mlen = 128.
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    message = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert aes.AesKey(key).cmac(message) == bytes.fromhex("070a16b46b4d4144f79bdd9dd04a287c")


def test_sizes_are_checked_and_the_key_is_not_shown() -> None:
    prepared = aes.AesKey(bytes(16))
    with pytest.raises(CryptoError):
        prepared.cbc_encrypt(bytes(16), bytes(5))
    with pytest.raises(CryptoError):
        prepared.cbc_decrypt(bytes(8), bytes(16))
    with pytest.raises(CryptoError):
        aes.AesKey(bytes(15))
    assert "hidden" in repr(prepared)
