"""Prepared keys (made once, shared between threads) give exactly the one-shot functions' results:
SharedAesKey, AesDiversifier (AN10922), PiccDecryptor and sun_message (AN12196)."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from cardsvc.cardcrypto import aes, sun
from cardsvc.cardcrypto.an10922 import AesDiversifier, diversification_input, diversify_aes128
from cardsvc.errors import CardIntegrityError, CryptoError, MalformedCredential

H = bytes.fromhex


@pytest.mark.parametrize("blocks", [1, 2, 5])
def test_shared_key_blocks_and_subkeys_match_the_module_functions(blocks: int) -> None:
    for _ in range(50):
        key, data = os.urandom(16), os.urandom(16 * blocks)
        shared = aes.SharedAesKey(key)
        for _ in range(2):  # a reused context keeps no state between calls
            assert shared.encrypt_blocks(data) == aes.ecb_encrypt(key, data)
            assert shared.decrypt_blocks(data) == aes.ecb_decrypt(key, data)
        assert (shared.k1, shared.k2) == aes.cmac_subkeys(aes.ecb_encrypt(key, aes.ZERO_BLOCK))


def test_shared_key_refuses_partial_blocks_and_hides_the_key() -> None:
    shared = aes.SharedAesKey(bytes(range(16)))
    block = os.urandom(16)
    for size in (1, 15, 17):
        with pytest.raises(CryptoError):
            shared.encrypt_blocks(bytes(size))
        with pytest.raises(CryptoError):
            shared.decrypt_blocks(bytes(size))
    # nothing stayed buffered: the next block is still encrypted on its own
    assert shared.encrypt_blocks(block) == aes.ecb_encrypt(bytes(range(16)), block)
    assert "00010203" not in repr(shared)
    with pytest.raises(CryptoError):
        aes.SharedAesKey(bytes(15))


def test_shared_key_from_many_threads_equals_the_one_shot_results() -> None:
    key = os.urandom(16)
    shared = aes.SharedAesKey(key)
    blocks = [os.urandom(16) for _ in range(400)]

    def both(block: bytes) -> tuple[bytes, bytes]:
        return shared.encrypt_blocks(block), shared.decrypt_blocks(block)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(both, blocks))
    assert results == [(aes.ecb_encrypt(key, b), aes.ecb_decrypt(key, b)) for b in blocks]


def test_diversifier_an10922_section_2_2_1_and_no_32_padding() -> None:
    # the known answers of tests/cardcrypto/test_an10922.py, through the prepared path
    m = diversification_input(uid=H("04782E21801D80"), aid=H("3042F5"), system_identifier=b"NXP Abu")
    assert AesDiversifier(H("00112233445566778899AABBCCDDEEFF")).diversify(m) == H(
        "A8DD63A3B89D54B37CA802473FDA9175")
    m = diversification_input(uid=H("044D0702195E80"), aid=H("DADADA"), system_identifier=H("715517"))
    key = H("83A66CF43605111802A2616FA0C5E2FF")
    assert AesDiversifier(key, pad_to_32=False).diversify(m) == H("DAE9B8D3136B2DAE35D58678F378B0B1")


@pytest.mark.parametrize("pad_to_32", [True, False])
def test_diversifier_equals_the_one_shot_function_for_every_length(pad_to_32: bool) -> None:
    rng = random.Random(0x10922)
    for _ in range(20):
        master = rng.randbytes(16)
        diversifier = AesDiversifier(master, pad_to_32=pad_to_32)
        for size in range(1, 32):
            m = rng.randbytes(size)
            assert diversifier.diversify(m) == diversify_aes128(master, m, pad_to_32=pad_to_32)


def test_diversifier_checks_the_input_length_like_the_one_shot_function() -> None:
    diversifier = AesDiversifier(bytes(16))
    for m in (b"", bytes(32)):
        with pytest.raises(CryptoError):
            diversify_aes128(bytes(16), m)
        with pytest.raises(CryptoError):
            diversifier.diversify(m)
    assert "key hidden" in repr(diversifier)


def test_picc_decryptor_an12196_table2() -> None:
    reading = sun.PiccDecryptor(bytes(16)).decrypt(H("EF963FF7828658A599F3041510671E88"))
    assert (reading.uid, reading.counter) == (H("04DE5F1EACC040"), 61)


def test_picc_decryptor_equals_the_one_shot_function_on_random_input() -> None:
    rng = random.Random(0x12196)
    opened = 0
    for _ in range(40):
        key = rng.randbytes(16)
        prepared = sun.PiccDecryptor(key)
        for _ in range(20):
            picc = sun.encrypt_picc_data(key, rng.randbytes(7), rng.randrange(1 << 24), rng.randbytes(5))
            assert prepared.decrypt(picc) == sun.decrypt_picc_data(key, picc)
            opened += 1
            foreign = rng.randbytes(16)  # mostly not tag C7: both refuse, or both read the same
            try:
                expected = sun.decrypt_picc_data(key, foreign)
            except CardIntegrityError:
                with pytest.raises(CardIntegrityError):
                    prepared.decrypt(foreign)
            else:
                assert prepared.decrypt(foreign) == expected
    assert opened == 800
    for size in (0, 15, 17, 32):
        with pytest.raises(MalformedCredential):
            sun.PiccDecryptor(bytes(16)).decrypt(bytes(size))


def test_sun_message_equals_parse_sun_url() -> None:
    rng = random.Random(5)
    for n in range(50):
        p, m = rng.randbytes(16).hex(), rng.randbytes(8).hex()
        p, m = (p.upper(), m) if n % 2 else (p, m.upper())
        assert sun.sun_message(p, m) == sun.parse_sun_url(f"https://x.example/t?p={p}&m={m}")
    assert sun.sun_message("EF963FF7828658A599F3041510671E88", "94EED9EE65337086",
                           picc_param="e", mac_param="c") == sun.parse_sun_url(
        "https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086",
        picc_param="e", mac_param="c")


@pytest.mark.parametrize(("p", "m"), [
    ("EF963FF7828658A599F3041510671E8", "94EED9EE65337086"),  # 31 digits
    ("EF963FF7828658A599F3041510671E88", "94EED9EE6533708"),
    ("EF963FF7828658A599F3041510671EXX", "94EED9EE65337086"),
    ("EF963FF7828658A599F3041510671E88", "94EED9EE653370 6"),  # whitespace is not a hex digit
    ("EF963FF7828658A599F3041510671E88", ""),
])
def test_sun_message_refuses_what_is_not_hex_of_the_right_length(p: str, m: str) -> None:
    with pytest.raises(MalformedCredential) as caught:
        sun.sun_message(p, m)
    assert caught.value.reason == "sun_malformed"
