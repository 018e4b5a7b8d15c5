"""SUN / SDM: AN12196 known answers, the emulator's build path and the verifier's failure paths."""

from __future__ import annotations

import pytest

from cardsvc.cardcrypto import aes
from cardsvc.cardcrypto.sun import (
    SunMessage,
    counter_bytes,
    decrypt_file_data,
    decrypt_picc_data,
    encrypt_picc_data,
    parse_sun_url,
    sdm_mac,
    sdm_session_enc_key,
    sdm_session_mac_key,
    verify_sun,
)
from cardsvc.errors import CardIntegrityError, CryptoError, MalformedCredential

H = bytes.fromhex
ZERO = bytes(16)


def test_sdm_session_keys_an12196_table1() -> None:
    # AN12196 §3.3 Table 1; Amperstrand/ntag424-crypto : test/an12196-vectors.test.ts
    key, uid = H("5ACE7E50AB65D5D51FD5BF5A16B8205B"), H("04C767F2066180")
    # the table's SV carries counter bytes 01 00 00 (LSB first), i.e. SDMReadCtr = 1
    assert sdm_session_enc_key(key, uid, 1) == H("66da61797e23deca5d8eca13bbadf7a9")
    assert sdm_session_mac_key(key, uid, 1) == H("3a3e8110e05311f7a3fcf0d969bf2b48")


def test_picc_data_decryption_an12196_table2() -> None:
    # AN12196 §3.4.2.1 Table 2; nfc-developer/sdm-backend : tests/test_libsdm.py test_sun1;
    # Amperstrand/ntag424-vectors : vectors.json an12196-table2-picc-decrypt
    reading = decrypt_picc_data(ZERO, H("EF963FF7828658A599F3041510671E88"))
    assert reading.uid == H("04DE5F1EACC040")
    assert reading.counter == 61


def test_full_sun_verification_an12196_table4() -> None:
    # AN12196 §3.4.4.2.1 Table 4; nfc-developer/sdm-backend : tests/test_libsdm.py test_sun1
    message = parse_sun_url("https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086",
                            picc_param="e", mac_param="c")
    assert sdm_session_mac_key(ZERO, H("04DE5F1EACC040"), 61) == H("3fb5f6e3a807a03d5e3570ace393776f")
    reading = verify_sun(message, meta_read_key=ZERO, file_read_key=lambda _uid: ZERO)
    assert (reading.uid, reading.counter) == (H("04DE5F1EACC040"), 61)


@pytest.mark.parametrize(
    ("p", "c", "counter"),
    [
        # Amperstrand/ntag424-vectors : vectors.json sdm-valid-picc-counter0 / -counter1
        ("e61cb056f52d34f9368f079d1814d2cf", "fcc9a22201ea2298", 0),
        ("d798d011fa0bf5bd5ece6f42265b02d5", "b49d12860da69e54", 1),
    ],
)
def test_cross_language_vectors(p: str, c: str, counter: int) -> None:
    k1, k2 = H("55da174c9608993dc27bb3f30a4a7314"), H("2ab74abc1273fb43cae97553a36d4d08")
    reading = verify_sun(SunMessage(H(p), H(c)), meta_read_key=k1, file_read_key=lambda _uid: k2)
    assert reading.uid == H("0425607a8f6980")
    assert reading.counter == counter


def test_plain_mirror_mac_sdm_backend() -> None:
    # nfc-developer/sdm-backend : tests/test_libsdm.py test_plain_sdm (UID 041E3C8A2D6B80, ctr 000006
    # in ASCII/MSB-first form = 6)
    assert sdm_mac(ZERO, H("041E3C8A2D6B80"), 6) == H("4B00064004B0B3D3")


def test_emulator_build_path_round_trips() -> None:
    meta, file_key, uid = bytes(range(16)), bytes(range(16, 32)), H("04A1B2C3D4E5F6")
    picc = encrypt_picc_data(meta, uid, 0x123456, b"\x11" * 5)
    mac = sdm_mac(file_key, uid, 0x123456)
    reading = verify_sun(SunMessage(picc, mac), meta_read_key=meta, file_read_key=lambda _u: file_key)
    assert (reading.uid, reading.counter) == (uid, 0x123456)
    assert counter_bytes(0x123456) == H("563412")


def test_wrong_mac_is_rejected() -> None:
    # nfc-developer/sdm-backend : tests/test_libsdm.py test_plain_sdm_wrong uses a flipped MAC likewise
    message = SunMessage(H("EF963FF7828658A599F3041510671E88"), H("94EED9EE65337087"))
    with pytest.raises(CardIntegrityError):
        verify_sun(message, meta_read_key=ZERO, file_read_key=lambda _uid: ZERO)


def test_wrong_file_key_is_rejected() -> None:
    message = SunMessage(H("EF963FF7828658A599F3041510671E88"), H("94EED9EE65337086"))
    with pytest.raises(CardIntegrityError):
        verify_sun(message, meta_read_key=ZERO, file_read_key=lambda _uid: b"\x01" * 16)


def test_wrong_meta_key_is_rejected() -> None:
    message = SunMessage(H("EF963FF7828658A599F3041510671E88"), H("94EED9EE65337086"))
    with pytest.raises(CardIntegrityError):
        verify_sun(message, meta_read_key=b"\x01" * 16, file_read_key=lambda _uid: ZERO)


def test_foreign_record_tag_is_rejected() -> None:
    picc = aes.cbc_encrypt(ZERO, aes.ZERO_BLOCK, H("C6") + bytes(15))
    with pytest.raises(CardIntegrityError):
        decrypt_picc_data(ZERO, picc)


@pytest.mark.parametrize(
    "url",
    [
        "https://x/t?p=EF963FF7828658A599F3041510671E88",  # no MAC
        "https://x/t?p=EF963FF7828658A599F3041510671E8&m=94EED9EE65337086",  # 31 digits
        "https://x/t?p=EF963FF7828658A599F3041510671E88&m=94EED9EE6533708Z",  # not hex
        "https://x/t?p=EF963FF7828658A599F3041510671E88&p=EF963FF7828658A599F3041510671E88&m=94EED9EE65337086",
        "not a url at all",
    ],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(MalformedCredential):
        parse_sun_url(url)


def test_malformed_message_parts() -> None:
    with pytest.raises(MalformedCredential):
        decrypt_picc_data(ZERO, bytes(15))
    with pytest.raises(MalformedCredential):
        verify_sun(SunMessage(H("EF963FF7828658A599F3041510671E88"), bytes(4)), meta_read_key=ZERO,
                   file_read_key=lambda _uid: ZERO)
    with pytest.raises(CryptoError):
        counter_bytes(1 << 24)
    with pytest.raises(CryptoError):
        encrypt_picc_data(ZERO, bytes(7), 0, b"")
    with pytest.raises(CryptoError):
        sdm_mac(ZERO, bytes(4), 0)


def test_encrypted_file_data_and_mac_over_url_text() -> None:
    # AN12196 §3.4.4.2.2 example; nfc-developer/sdm-backend : tests/test_libsdm.py test_sun2
    # (MAC input = the mirrored hex of the encrypted data plus "&cmac=", up to the MAC)
    reading = decrypt_picc_data(ZERO, H("FD91EC264309878BE6345CBE53BADF40"))
    assert (reading.uid, reading.counter) == (H("04958CAA5C5E80"), 8)
    enc = H("CEE9A53E3E463EF1F459635736738962")
    assert decrypt_file_data(ZERO, reading.uid, reading.counter, enc) == b"xxxxxxxxxxxxxxxx"
    message = SunMessage(H("FD91EC264309878BE6345CBE53BADF40"), H("ECC1E7F6C6C73BF6"),
                         mac_input=b"CEE9A53E3E463EF1F459635736738962&cmac=")
    assert verify_sun(message, meta_read_key=ZERO, file_read_key=lambda _uid: ZERO) == reading
    with pytest.raises(CardIntegrityError):  # sdm-backend test_sun2_wrong_sdmmac
        verify_sun(SunMessage(message.picc_data, H("3CC1E7F6C6C33B33"), message.mac_input),
                   meta_read_key=ZERO, file_read_key=lambda _uid: ZERO)
    with pytest.raises(MalformedCredential):
        decrypt_file_data(ZERO, reading.uid, 8, enc[:15])


def test_custom_keys_vector_sdm_backend() -> None:
    # nfc-developer/sdm-backend : tests/test_libsdm.py test_sun3_custom (MAC input = the encrypted
    # data's hex only, no parameter name)
    meta, file_key = H("42aff114f2cb3b6141be6dc95dfc5416"), H("b62a9baf092439bd43c62aee96b970c5")
    enc = H("B8436E11F627BB7F543FCC0C1E0D1A89")
    message = SunMessage(H("8ACADDEF0A9B62CDAE39A16B83FC14DE"), H("238B2543A8DEBAD8"),
                         mac_input=enc.hex().upper().encode())
    reading = verify_sun(message, meta_read_key=meta, file_read_key=lambda _uid: file_key)
    assert (reading.uid, reading.counter) == (H("041d3c8a2d6b80"), 291)
    plain = decrypt_file_data(file_key, reading.uid, reading.counter, enc)
    assert plain == H("4e545858716e6f5f6f42467077792d56")
