"""Prepared TDES contexts (:class:`DesKey`, :class:`RetailMacKey`, :class:`PreparedTdesSuite`) give
exactly what the one-shot functions give, and reject the same bad sizes."""

from __future__ import annotations

import random

import pytest

from cardsvc.cardcrypto import des, fmcos, retail_mac
from cardsvc.errors import CryptoError

_RNG = random.Random(2)
KEYS = [_RNG.randbytes(size) for size in (8, 16, 24, 16, 16)]
MESSAGES = [_RNG.randbytes(size) for size in (0, 1, 7, 8, 9, 15, 16, 17, 40, 255)]


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{len(k)}-byte")
def test_des_key_ecb_and_cbc_chain_equal_the_functions(key: bytes) -> None:
    prepared = des.DesKey(key)
    for length in (8, 16, 64):
        data, iv = _RNG.randbytes(length), _RNG.randbytes(8)
        assert prepared.ecb_encrypt(data) == des.ecb_encrypt(key, data)
        assert prepared.ecb_decrypt(data) == des.ecb_decrypt(key, data)
        assert prepared.cbc_last(iv, data) == des.cbc_encrypt(key, iv, data)[-8:]


def test_des_key_rejects_what_the_functions_reject() -> None:
    with pytest.raises(CryptoError):
        des.DesKey(bytes(15))
    prepared = des.DesKey(bytes(16))
    with pytest.raises(CryptoError):
        prepared.ecb_encrypt(bytes(7))
    with pytest.raises(CryptoError):
        prepared.cbc_last(bytes(4), bytes(8))
    assert "00" not in repr(prepared)


def test_retail_mac_key_equals_retail_mac_on_many_messages() -> None:
    for key in (k for k in KEYS if len(k) == 16):
        prepared = retail_mac.RetailMacKey(key)
        for message in MESSAGES:
            iv = _RNG.randbytes(8)
            assert prepared.mac(message, iv) == retail_mac.retail_mac(key, message, iv)
            assert prepared.mac(message) == retail_mac.retail_mac(key, message)


def test_retail_mac_key_checks_sizes() -> None:
    with pytest.raises(CryptoError):
        retail_mac.RetailMacKey(bytes(8))
    with pytest.raises(CryptoError):
        retail_mac.RetailMacKey(bytes(16)).mac(b"x", bytes(7))


def test_prepared_suite_matches_the_shared_suite_and_stays_bounded() -> None:
    suite = fmcos.prepared_suite("tdes")
    assert isinstance(suite, fmcos.PreparedTdesSuite)
    assert fmcos.prepared_suite("sm4") is fmcos.suite("sm4")
    for number in range(40):  # more keys than the cache holds: still right after it starts over
        key, iv, block = _RNG.randbytes(16), _RNG.randbytes(8), _RNG.randbytes(16)
        message = MESSAGES[number % len(MESSAGES)]
        assert suite.encrypt(key, block) == fmcos.TDES.encrypt(key, block)
        assert suite.decrypt(key, block) == fmcos.TDES.decrypt(key, block)
        assert suite.mac(key, message, iv) == fmcos.TDES.mac(key, message, iv)
        assert fmcos.line_mac(suite, key, message, iv[:4]) == fmcos.line_mac(fmcos.TDES, key, message, iv[:4])
    assert len(suite._ciphers) <= suite._LIMIT and len(suite._macs) <= suite._LIMIT
