"""EV2 authentication, secure messaging (MAC/FULL) and ChangeKey: known answers and failure paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsvc.cardcrypto.ev2 import (
    CommMode,
    Ev2Authenticator,
    Ev2CardHandshake,
    SecureMessaging,
    change_key_data,
    derive_session_keys,
    parse_change_key_data,
    session_vectors,
)
from cardsvc.errors import CardIntegrityError, CryptoError

H = bytes.fromhex

# AN12196 §6.6 (key 0) and §6.10 (key 3) authentications, values as in
# icedevml/nfc-ev2-crypto : test_ev2.py (test_auth1, test_auth2)
AUTH_CASES = [
    pytest.param(
        "13C5DB8A5930439FC3DEF9A4C675360F",
        "A04C124213C186F22399D33AC2A30215",
        "35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D",
        "3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663",
        "9D00C4DF", "1309C877509E5A215007FF0ED19CA564", "4C6626F5E72EA694202139295C7A7FC7",
        id="an12196-6.6-key0",
    ),
    pytest.param(
        "B98F4C50CF1C2E084FD150E33992B048",
        "B875CEB0E66A6C5CD00898DC371F92D1",
        "FF0306E47DFBC50087C4D8A78E88E62DE1E8BE457AA477C707E2F0874916A8B1",
        "0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A",
        "7614281A", "7A93D6571E4B180FCA6AC90C9A7488D4", "FC4AF159B62E549B5812394CAB1918CC",
        id="an12196-6.10-key3",
    ),
]


@pytest.mark.parametrize(("rnd_a", "e_rnd_b", "part1", "part2", "ti", "enc", "mac"), AUTH_CASES)
def test_authenticate_ev2_first_pcd(rnd_a: str, e_rnd_b: str, part1: str, part2: str,
                                    ti: str, enc: str, mac: str) -> None:
    auth = Ev2Authenticator(bytes(16), H(rnd_a))
    assert Ev2Authenticator.first_command_data(0) == H("0000")
    assert auth.answer_challenge(H(e_rnd_b)) == H(part1)
    session = auth.finish(H(part2))
    assert (session.ti, session.enc_key, session.mac_key, session.cmd_ctr) == (H(ti), H(enc), H(mac), 0)


@pytest.mark.parametrize(("rnd_a", "e_rnd_b", "part1", "part2", "ti", "enc", "mac"), AUTH_CASES)
def test_card_side_reproduces_the_same_transcript(rnd_a: str, e_rnd_b: str, part1: str, part2: str,
                                                   ti: str, enc: str, mac: str) -> None:
    rnd_b = Ev2Authenticator(bytes(16), H(rnd_a)).answer_challenge(H(e_rnd_b))  # any call works
    card = Ev2CardHandshake(bytes(16), _decrypt_block(H(e_rnd_b)), H(ti))
    assert card.challenge() == H(e_rnd_b)
    reply, session = card.respond(H(part1))
    assert reply == H(part2)
    assert (session.enc_key, session.mac_key) == (H(enc), H(mac))
    assert rnd_b  # the PCD half ran


def _decrypt_block(block: bytes) -> bytes:
    from cardsvc.cardcrypto import aes

    return aes.cbc_decrypt(bytes(16), aes.ZERO_BLOCK, block)


def test_session_vector_layout() -> None:
    sv1, sv2 = session_vectors(bytes(range(16)), bytes(range(0x10, 0x20)))
    assert sv1[:6] == H("A55A00010080") and sv2[:6] == H("5AA500010080")
    assert sv1[6:8] == H("0001")
    assert sv1[8:14] == bytes(a ^ b for a, b in zip(range(2, 8), range(0x10, 0x16), strict=True))
    assert sv1[14:24] == bytes(range(0x16, 0x20)) and sv1[24:] == bytes(range(8, 16))
    assert len(derive_session_keys(bytes(16), bytes(16), bytes(16))) == 2


def test_wrong_key_is_detected_by_both_sides() -> None:
    card = Ev2CardHandshake(bytes(16), bytes(range(16)), H("01020304"))
    pcd = Ev2Authenticator(b"\x01" * 16, bytes(16))
    with pytest.raises(CardIntegrityError):
        card.respond(pcd.answer_challenge(card.challenge()))
    with pytest.raises(CardIntegrityError):
        pcd.finish(bytes(32))


def test_authenticator_refuses_out_of_order_and_bad_sizes() -> None:
    pcd = Ev2Authenticator(bytes(16), bytes(16))
    with pytest.raises(CryptoError):
        pcd.finish(bytes(32))
    with pytest.raises(CardIntegrityError):
        pcd.answer_challenge(bytes(8))
    with pytest.raises(CryptoError):
        Ev2Authenticator(bytes(16), bytes(8))


def test_mac_mode_command_and_response() -> None:
    # AN12196 §5.3 (GetFileSettings in MAC mode); icedevml/nfc-ev2-crypto : test_ev2.py test_mac1
    sm = SecureMessaging(enc_key=bytes(16), mac_key=H("8248134A386E86EB7FAF54A52E536CB6"), ti=H("7A21085E"))
    assert sm.protect_command(0xF5, b"\x02", b"", CommMode.mac) == H("026597A457C8CD442C")
    body = H("0040EEEE000100D1FE001F00004400004400002000006A00002A474282E7A47986")
    plain = H("0040EEEE000100D1FE001F00004400004400002000006A0000")
    assert sm.open_response(0x00, body, CommMode.mac) == plain
    assert sm.cmd_ctr == 1


def test_full_mode_write_ndef() -> None:
    # AN12196 §5.4 (WriteData 128 B NDEF in FULL mode); icedevml/nfc-ev2-crypto : test_ev2.py test_full1
    sm = SecureMessaging(enc_key=H("1309C877509E5A215007FF0ED19CA564"),
                         mac_key=H("4C6626F5E72EA694202139295C7A7FC7"), ti=H("9D00C4DF"))
    header = H("02000000800000")
    url = b"choose.url.com/ntag424?e=" + b"0" * 32 + b"&c=" + b"0" * 16
    data = H("0051D1014D5504") + url
    data += bytes(128 - len(data))
    expected = H(
        "02000000800000421C73A27D827658AF481FDFF20A5025B559D0E3"
        "AA21E58D347F343CFFC768BFE596C706BC00F2176781D4B0242642A0FF5A42C4"
        "61AAF894D9A1284B8C76BCFA658ACD40555D362E08DB15CF421B51283F9064BC"
        "BE20E96CAE545B407C9D651A3315B27373772E5DA2367D2064AE054AF996C6F1"
        "F669170FA88CE8C4E3A4A7BBBEF0FD971FF532C3A802AF745660F2B4D1D9A849"
        "9661EBF3"
    )
    assert len(data) == 128
    assert sm.protect_command(0x8D, header, data, CommMode.full) == expected
    assert sm.open_response(0x00, H("FC222E5F7A542452"), CommMode.full) == b""


def test_full_mode_change_file_settings_an12196() -> None:
    # AN12196 rev 1.8 §6.9 Table 19 (rev 2.0 §5.9 Table 18): ChangeFileSettings of the NDEF file
    # right after Table 17's WriteData, so CmdCtr = 1; same session keys and TI as test_full_mode_write_ndef
    sm = SecureMessaging(enc_key=H("1309C877509E5A215007FF0ED19CA564"),
                         mac_key=H("4C6626F5E72EA694202139295C7A7FC7"), ti=H("9D00C4DF"), cmd_ctr=1)
    field = sm.protect_command(0x5F, b"\x02", H("4000E0C1F121200000430000430000"), CommMode.full)
    assert field == H("0261B6D97903566E84C3AE5274467E89EAD799B7C1A0EF7A04")
    assert sm.open_response(0x00, H("57BFF87B1241E93D"), CommMode.full) == b""
    assert sm.cmd_ctr == 2
    with pytest.raises(CardIntegrityError):  # the same answer again: CmdCtr moved on
        sm.open_response(0x00, H("57BFF87B1241E93D"), CommMode.full)


def test_full_mode_write_and_response() -> None:
    # AN12196 §6.12 (WriteData to file 03); icedevml/nfc-ev2-crypto : test_ev2.py test_full2
    sm = SecureMessaging(enc_key=H("7A93D6571E4B180FCA6AC90C9A7488D4"),
                         mac_key=H("FC4AF159B62E549B5812394CAB1918CC"), ti=H("7614281A"))
    out = sm.protect_command(0x8D, H("030000000A0000"), H("0102030405060708090A"), CommMode.full)
    assert out == H("030000000A00006B5E6804909962FC4E3FF5522CF0F8436C0C53315B9C73AA")
    assert sm.open_response(0x00, H("C26D236E4A7C046D"), CommMode.full) == b""


def test_full_mode_response_decryption() -> None:
    # AN12196 §7.3 (GetCardUID); icedevml/nfc-ev2-crypto : test_ev2.py test_full3
    sm = SecureMessaging(enc_key=H("2B4D963C014DC36F24F69A50A394F875"),
                         mac_key=H("379D32130CE61705DD5FD8C36B95D764"), ti=H("DF055522"))
    assert sm.protect_command(0x51, b"", b"", CommMode.full) == H("8E2C155ADDA99BE3")
    body = H("70756055688505B52A5E26E59E329CD6595F672298EA41B7")
    assert sm.open_response(0x00, body, CommMode.full) == H("04958CAA5C5E80")


def _session() -> SecureMessaging:
    return SecureMessaging(enc_key=bytes(range(16)), mac_key=bytes(range(16, 32)), ti=H("CAFEBABE"))


def test_card_side_mirrors_pcd_side_and_counter_advances() -> None:
    pcd, card = _session(), _session()
    for n in range(3):
        data = bytes([n]) * (n * 9)
        field = pcd.protect_command(0x8D, b"\x03", data, CommMode.full)
        assert card.open_command(0x8D, 1, field, CommMode.full) == (b"\x03", data)
        reply = card.protect_response(0x00, data[::-1], CommMode.full)
        assert pcd.open_response(0x00, reply, CommMode.full) == data[::-1]
    assert pcd.cmd_ctr == card.cmd_ctr == 3


def test_tampered_or_replayed_messages_are_rejected() -> None:
    pcd, card = _session(), _session()
    field = pcd.protect_command(0xAD, H("02000000000000"), b"", CommMode.mac)
    tampered = bytes([field[0] ^ 1]) + field[1:]
    with pytest.raises(CardIntegrityError):
        card.open_command(0xAD, 7, tampered, CommMode.mac)
    with pytest.raises(CardIntegrityError):
        card.open_command(0xAD, 7, field[:5], CommMode.mac)
    reply = card.protect_response(0x00, b"data", CommMode.mac)
    with pytest.raises(CardIntegrityError):  # a response MAC made with the wrong status code
        _session().open_response(0x01, reply, CommMode.mac)
    assert pcd.open_response(0x00, reply, CommMode.mac) == b"data"
    with pytest.raises(CardIntegrityError):  # the same response replayed at the next counter
        pcd.open_response(0x00, reply, CommMode.mac)
    with pytest.raises(CardIntegrityError):
        pcd.open_response(0x00, b"short", CommMode.mac)


def test_full_mode_with_bad_padding_is_an_integrity_error() -> None:
    from cardsvc.cardcrypto import aes

    card, pcd = _session(), _session()
    iv = aes.ecb_encrypt(pcd.enc_key, H("A55A") + pcd.ti + bytes(10))
    bogus = aes.cbc_encrypt(pcd.enc_key, iv, bytes(16))  # no 80 marker
    field = b"\x01" + bogus + pcd._command_mac(0xC4, b"\x01" + bogus)
    with pytest.raises(CardIntegrityError):
        card.open_command(0xC4, 1, field, CommMode.full)


def test_change_key_same_key_an12196() -> None:
    # AN12196 Table 26 (case 2, key 0 while authenticated with key 0), values as in
    # drusifer/ntag424_sdm_provisioner : tests/test_crypto_components.py TestAN12196Vectors
    sm = SecureMessaging(enc_key=H("4CF3CB41A22583A61E89B158D252FC53"),
                         mac_key=H("5529860B2FC5FB6154B7F28361D30BF9"), ti=H("7614281A"), cmd_ctr=3)
    plain = change_key_data(H("5004BF991F408672B1EF00F08F9E8647"), 1)
    assert plain == H("5004BF991F408672B1EF00F08F9E864701")
    out = sm.protect_command(0xC4, b"\x00", plain, CommMode.full)
    assert out == H("00C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FDA6610234BDED6432")


def test_change_key_other_key_an12196() -> None:
    # AN12196 rev. 2.0 §5.16.1 Table 25 (case 1: key 2 while authenticated with key 0, CmdCtr 2)
    sm = SecureMessaging(enc_key=H("4CF3CB41A22583A61E89B158D252FC53"),
                         mac_key=H("5529860B2FC5FB6154B7F28361D30BF9"), ti=H("7614281A"), cmd_ctr=2)
    new_key = H("F3847D627727ED3BC9C4CC050489B966")
    plain = change_key_data(new_key, 1, old_key=bytes(16))
    assert plain == new_key + H("01789DFADC")
    out = sm.protect_command(0xC4, b"\x02", plain, CommMode.full)
    assert out == H("022CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC75D0CE20BCD1D06E6")
    assert parse_change_key_data(plain, old_key=bytes(16)) == (new_key, 1)


def test_change_key_parse_failures() -> None:
    old = bytes(range(16))
    plain = change_key_data(b"\x55" * 16, 7, old_key=old)
    assert parse_change_key_data(plain, old_key=old) == (b"\x55" * 16, 7)
    with pytest.raises(CardIntegrityError):  # the card holds another old key than the PCD assumed
        parse_change_key_data(plain, old_key=bytes(16))
    with pytest.raises(CardIntegrityError):
        parse_change_key_data(plain)
    with pytest.raises(CardIntegrityError):
        parse_change_key_data(plain[:17], old_key=old)
    assert parse_change_key_data(change_key_data(b"\x11" * 16, 2)) == (b"\x11" * 16, 2)
    with pytest.raises(CryptoError):
        change_key_data(bytes(16), 256)


@given(data=st.binary(max_size=200), header=st.binary(max_size=7), mode=st.sampled_from(list(CommMode)),
       ctr=st.integers(min_value=0, max_value=0xFFFE))
def test_any_message_round_trips_between_pcd_and_card(data: bytes, header: bytes, mode: CommMode,
                                                     ctr: int) -> None:
    pcd, card = _session(), _session()
    pcd.cmd_ctr = card.cmd_ctr = ctr
    field = pcd.protect_command(0x8D, header, data, mode)
    assert card.open_command(0x8D, len(header), field, mode) == (header, data)
    assert pcd.open_response(0x00, card.protect_response(0x00, data, mode), mode) == data
    assert pcd.cmd_ctr == card.cmd_ctr == ctr + 1
