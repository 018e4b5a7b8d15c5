"""The emulated FM1208 card, driven with raw APDUs: command set, rights, counters, tearing, image."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto import des
from cardsvc.cardcrypto.fmcos import (
    TDES,
    auth_cryptogram,
    decrypt_line,
    encrypt_line,
    protect,
    verify_response_mac,
)
from cardsvc.emulator.base import VirtualCard, card_class
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.emulator.fmcos_fs import FACTORY_KEY, fm1208_atr
from tests.fmcos.conftest import UID, counting_rng

H = bytes.fromhex
KEY_A = bytes(range(16))
LINE_KEY = bytes(range(0x40, 0x50))


def send(card: FmcosCard, apdu: CommandApdu | str) -> tuple[bytes, int]:
    raw = H(apdu) if isinstance(apdu, str) else apdu.to_bytes()
    out = card.process(raw)
    return out[:-2], int.from_bytes(out[-2:], "big")


def sw(card: FmcosCard, apdu: CommandApdu | str) -> int:
    return send(card, apdu)[1]


def auth(card: FmcosCard, key_id: int = 0, key: bytes = FACTORY_KEY) -> int:
    challenge, status = send(card, "0084000008")
    assert status == 0x9000
    return sw(card, CommandApdu(0x00, 0x82, 0x00, key_id, auth_cryptogram(TDES, key, challenge)))


def key_record(key_type: int, use: int = 0xF0, change: int = 0xF0, third: int = 0x01,
               fourth: int = 0x33, value: bytes = KEY_A) -> bytes:
    return bytes((key_type, use, change, third, fourth)) + value


def fresh_mf(card: FmcosCard) -> None:
    """Erase the MF and give it a key file with admin key 00 = KEY_A (counter 3/3) and a line key."""
    assert sw(card, "00A40000023F00") == 0x9000
    assert auth(card) == 0x9000
    assert sw(card, "800E000000") == 0x9000
    assert sw(card, "80E00000073F008001F1FFFF") == 0x9000
    assert sw(card, CommandApdu(0x80, 0xD4, 0x01, 0x00, key_record(0xF9))) == 0x9000  # 39 | C0
    line = key_record(0x36, third=0xFF, fourth=0xFF, value=LINE_KEY)
    assert sw(card, CommandApdu(0x80, 0xD4, 0x01, 0x02, line)) == 0x9000


@pytest.fixture
def card() -> FmcosCard:
    return FmcosCard.blank(uid=UID, rng=counting_rng())


# --- identity, factory state, image -------------------------------------------------------------


def test_is_a_virtual_card_found_by_family(card: FmcosCard) -> None:
    assert isinstance(card, VirtualCard)
    assert card_class("fmcos") is FmcosCard


def test_atr_carries_fm1208_historical_bytes_and_tck(card: FmcosCard) -> None:
    atr = card.atr
    assert atr[:4] == H("3B8B8001") and atr[4:11] == H("20900000000000") and atr[11:15] == UID
    tck = 0
    for byte in atr[1:]:
        tck ^= byte
    assert tck == 0  # TCK makes the XOR of T0..TCK zero (ISO/IEC 7816-3 §8.2.5)
    assert fm1208_atr(H("01020304")) != atr


def test_reader_get_data_answers_uid(card: FmcosCard) -> None:
    assert send(card, "FFCA000000") == (UID, 0x9000)
    assert sw(card, "FFCA010000") == 0x6A81
    seven = FmcosCard.blank(uid=H("04112233445566"))
    assert send(seven, "FFCA000000") == (H("04112233445566"), 0x9000)


def test_factory_mf_select_returns_its_name(card: FmcosCard) -> None:
    data, status = send(card, "00A40000023F00")
    assert status == 0x9000 and data.endswith(b"1PAY.SYS.DDF01")
    assert send(card, "00A404000E" + b"1PAY.SYS.DDF01".hex()) == (data, 0x9000)


def test_image_round_trips_exactly(card: FmcosCard) -> None:
    fresh_mf(card)
    assert sw(card, "80E0000507280010F0F1FFFF") == 0x9000
    assert sw(card, "00A40000020005") == 0x9000
    assert sw(card, "00D6000003AABBCC") == 0x9000
    image = card.to_image()
    text = json.dumps(image, sort_keys=True)
    again = FmcosCard.from_image(json.loads(text))
    assert again.to_image() == image
    assert again.uid == card.uid and again.atr == card.atr
    assert again.process(H("00A40000023F00"))[-2:] == b"\x90\x00"


def test_uid_must_be_4_or_7_bytes() -> None:
    with pytest.raises(Exception, match="UID"):
        FmcosCard.blank(uid=H("010203"))


# --- challenge and external authentication ------------------------------------------------------


def test_get_challenge_lengths(card: FmcosCard) -> None:
    assert send(card, "0084000004") == (H("00010203"), 0x9000)
    assert send(card, "0084000008") == (H("0405060708090A0B"), 0x9000)
    assert sw(card, "0084000005") == 0x6700
    assert sw(card, "0084010008") == 0x6A86


def test_external_auth_with_factory_key(card: FmcosCard) -> None:
    assert auth(card) == 0x9000
    assert sw(card, "800E000000") == 0x9000  # erase right F1 now satisfied


def test_challenge_is_valid_for_the_next_command_only(card: FmcosCard) -> None:
    challenge, _ = send(card, "0084000008")
    assert sw(card, "00A40000023F00") == 0x9000
    cryptogram = auth_cryptogram(TDES, FACTORY_KEY, challenge)
    assert sw(card, CommandApdu(0x00, 0x82, 0x00, 0x00, cryptogram)) == 0x6984


def test_four_byte_challenge_is_padded_with_zeros(card: FmcosCard) -> None:
    challenge, _ = send(card, "0084000004")
    cryptogram = des.ecb_encrypt(FACTORY_KEY, challenge + bytes(4))
    assert sw(card, CommandApdu(0x00, 0x82, 0x00, 0x00, cryptogram)) == 0x9000


def test_error_counter_counts_down_locks_and_resets(card: FmcosCard) -> None:
    fresh_mf(card)  # admin key KEY_A with counter 33: three attempts
    assert auth(card, key=FACTORY_KEY) == 0x63C2
    assert auth(card, key=KEY_A) == 0x9000  # success restores the limit
    assert [auth(card, key=FACTORY_KEY) for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert auth(card, key=KEY_A) == 0x6983  # locked: even the right key is refused
    assert card.to_image()["mf"]["key_file"]["keys"][0]["fourth"] == "30"


def test_failed_auth_survives_power_loss_and_image(card: FmcosCard) -> None:
    assert auth(card, key=KEY_A) == 0x63CE  # factory counter FF: 15 -> 14
    restored = FmcosCard.from_image(card.to_image())
    assert auth(restored, key=KEY_A) == 0x63CD


def test_failed_auth_resets_the_security_state(card: FmcosCard) -> None:
    assert auth(card) == 0x9000
    assert auth(card, key=KEY_A) == 0x63CE
    assert sw(card, "800E000000") == 0x6982


def test_external_auth_errors(card: FmcosCard) -> None:
    assert sw(card, CommandApdu(0x00, 0x82, 0x00, 0x05, bytes(8))) == 0x6A88  # no such key
    assert sw(card, CommandApdu(0x00, 0x82, 0x00, 0x00, bytes(4))) == 0x6700
    assert sw(card, CommandApdu(0x00, 0x82, 0x00, 0x00, bytes(8))) == 0x6984  # no challenge


# --- file system, rights, keys ------------------------------------------------------------------


def test_erase_needs_the_admin_state(card: FmcosCard) -> None:
    assert sw(card, "800E000000") == 0x6982
    assert card.to_image()["mf"]["key_file"] is not None


def test_empty_df_is_unprotected_and_key_file_comes_first(card: FmcosCard) -> None:
    assert auth(card) == 0x9000
    assert sw(card, "800E000000") == 0x9000
    card.power_on()  # security state lost; the MF now has no key file at all
    assert sw(card, "80E0000107280010F0F1FFFF") == 0x6985
    assert sw(card, "800E000000") == 0x9000  # unprotected: erase right holds
    assert sw(card, "80E00000073F004001F1FFFF") == 0x9000
    assert sw(card, "80E00000073F004001F1FFFF") == 0x6A89  # one key file per DF
    assert sw(card, CommandApdu(0x80, 0xD4, 0x01, 0x00, key_record(0x39))) == 0x9000
    assert sw(card, "800E000000") == 0x6982  # protected again once it has an admin key


def test_create_file_refusals(card: FmcosCard) -> None:
    fresh_mf(card)
    ef = "80E0000107280010F0F1FFFF"
    assert sw(card, ef) == 0x9000
    assert sw(card, ef) == 0x6A89  # FID taken
    assert sw(card, "80E0000207990010F0F1FFFF") == 0x6A80  # unknown type
    assert sw(card, "80E0000307280000F0F1FFFF") == 0x6A80  # size 0
    assert sw(card, "80E0000307287FFF00F1FFFF") == 0x6A84  # no room
    assert sw(card, "80E000030528001000") == 0x6700
    df = "80E010010E380100F1F195FFFF".replace(" ", "") + "A00000000101"
    assert sw(card, df) == 0x9000
    assert sw(card, df.replace("80E01001", "80E01002")) == 0x6A8A  # DF name taken


def test_fixed_record_file_is_created_with_its_geometry(card: FmcosCard) -> None:
    fresh_mf(card)
    assert sw(card, "80E00004072A0510F0F1FFFF") == 0x9000  # 5 records of 16 bytes
    ef = card.to_image()["mf"]["efs"][0]
    assert (ef["type"], ef["size"], ef["record_length"]) == ("2A", 80, 16)
    assert sw(card, "00A40000020004") == 0x9000
    assert sw(card, "00B0000001") == 0x6981  # not a binary file


def test_child_df_inherits_the_state_parent_does_not(card: FmcosCard) -> None:
    fresh_mf(card)
    df = "80E010010E380100F1F195FFFF".replace(" ", "") + "A00000000101"
    assert sw(card, df) == 0x9000
    assert sw(card, "00A4040006A00000000101") == 0x9000
    assert sw(card, "80E00000073F004001F1FFFF") == 0x9000  # unprotected child: allowed anyway
    assert sw(card, CommandApdu(0x80, 0xD4, 0x01, 0x00, key_record(0x39, third=0x02))) == 0x9000
    assert sw(card, "80E0000107280010F0F1FFFF") == 0x9000  # S=1 inherited
    assert sw(card, "00A40000023F00") == 0x9000
    assert sw(card, "00A4000002 1001".replace(" ", "")) == 0x9000
    assert sw(card, "80E0000207280010F0F1FFFF") == 0x6982  # S reset by MF


def test_write_key_install_and_protected_update(card: FmcosCard) -> None:
    fresh_mf(card)  # admin key 00 installed with the C0 flag: a protected key
    assert sw(card, CommandApdu(0x80, 0xD4, 0x01, 0x00, key_record(0x39))) == 0x6A80  # exists
    new = key_record(0x39, value=bytes(range(16, 32)))
    assert sw(card, CommandApdu(0x80, 0xD4, 0x39, 0x00, new)) == 0x6982  # plain update refused
    assert _protected_key_write(card, KEY_A, 0x39, new) == 0x9000
    assert auth(card, key=bytes(range(16, 32))) == 0x9000
    key = card.to_image()["mf"]["key_file"]["keys"][0]
    assert key["value"] == bytes(range(16, 32)).hex().upper() and key["protected"] is True


def test_unprotected_key_takes_plain_updates_under_its_change_right(card: FmcosCard) -> None:
    fresh_mf(card)
    internal = key_record(0x34, change=0xF1, third=0x01, fourth=0x00)  # no flag: unprotected
    assert sw(card, CommandApdu(0x80, 0xD4, 0x01, 0x01, internal)) == 0x9000
    replacement = key_record(0x34, third=0x02, fourth=0x00, value=bytes(16))
    assert sw(card, CommandApdu(0x80, 0xD4, 0x34, 0x01, replacement)) == 0x9000  # S = 1
    assert sw(card, CommandApdu(0x80, 0xD4, 0x39, 0x01, replacement)) == 0x6A88  # wrong type
    card.power_on()
    assert sw(card, "00A40000023F00") == 0x9000
    assert sw(card, CommandApdu(0x80, 0xD4, 0x34, 0x01, internal)) == 0x9000  # its change was F0
    assert sw(card, CommandApdu(0x80, 0xD4, 0x34, 0x01, replacement)) == 0x6982  # F1 needs S >= 1


def test_protected_key_write_with_wrong_mac_counts_nothing(card: FmcosCard) -> None:
    fresh_mf(card)
    new = key_record(0x39, value=bytes(range(16, 32)))
    assert _protected_key_write(card, FACTORY_KEY, 0x39, new) == 0x6988
    assert card.to_image()["mf"]["key_file"]["keys"][0]["fourth"] == "33"  # no attempt spent
    assert auth(card, key=KEY_A) == 0x9000  # the key is unchanged


def _protected_key_write(card: FmcosCard, master: bytes, p1: int, record: bytes) -> int:
    body = encrypt_line(TDES, master, bytes((record[0] | 0xC0,)) + record[1:])
    challenge, _ = send(card, "0084000004")
    command = protect(TDES, master, CommandApdu(0x80, 0xD4, p1, 0x00, body), challenge)
    return sw(card, command)


def test_internal_auth_encrypts_the_challenge(card: FmcosCard) -> None:
    fresh_mf(card)
    internal = key_record(0x34, third=0x01, fourth=0x00, value=bytes(range(32, 48)))
    assert sw(card, CommandApdu(0x80, 0xD4, 0x01, 0x01, internal)) == 0x9000
    data, status = send(card, CommandApdu(0x00, 0x88, 0x00, 0x01, H("0011223344556677")))
    assert status == 0x9000
    assert data == des.ecb_encrypt(bytes(range(32, 48)), H("0011223344556677"))
    assert sw(card, CommandApdu(0x00, 0x88, 0x00, 0x00, bytes(8))) == 0x6A88  # 00 is not type 34
    assert sw(card, CommandApdu(0x00, 0x88, 0x00, 0x01, bytes(5))) == 0x6700


# --- binary files -------------------------------------------------------------------------------


def test_plain_binary_read_write_and_bounds(card: FmcosCard) -> None:
    fresh_mf(card)
    assert sw(card, "80E0000507280010F0F1FFFF") == 0x9000
    assert sw(card, "00B0000001") == 0x6986  # no current EF
    assert sw(card, "00A40000020005") == 0x9000
    assert sw(card, "00D6000003AABBCC") == 0x9000
    assert send(card, "00B0000004") == (H("AABBCC00"), 0x9000)
    assert send(card, "00B0000E00") == (bytes(2), 0x9000)  # Le 00: up to the end
    assert sw(card, "00B0000E04") == 0x6C02
    assert sw(card, "00B0001001") == 0x6B00
    assert sw(card, "00D6000E03AABBCC") == 0x6700
    assert send(card, "00B0850002") == (H("AABB"), 0x9000)  # by SFI 05
    card.power_on()
    assert sw(card, "00D6000001FF") == 0x6986  # selection is volatile


def test_write_right_needs_authentication(card: FmcosCard) -> None:
    fresh_mf(card)
    assert sw(card, "80E0000507280010F0F1FFFF") == 0x9000
    card.power_on()
    assert sw(card, "00A40000020005") == 0x9000
    assert sw(card, "00D6000001FF") == 0x6982
    assert send(card, "00B0000001") == (bytes(1), 0x9000)  # read right F0


def test_mac_protected_file_needs_a_valid_mac(card: FmcosCard) -> None:
    fresh_mf(card)
    assert sw(card, "80E0000607A80010F0F1FFFF") == 0x9000
    assert sw(card, "00A40000020006") == 0x9000
    assert sw(card, "00D6000003AABBCC") == 0x6982  # plain write refused
    challenge, _ = send(card, "0084000004")
    write = protect(TDES, LINE_KEY, CommandApdu(0x00, 0xD6, 0, 0, H("AABBCC")), challenge)
    assert sw(card, write) == 0x9000
    challenge, _ = send(card, "0084000004")
    forged = protect(TDES, KEY_A, CommandApdu(0x00, 0xD6, 0, 0, H("DDEEFF")), challenge)
    assert sw(card, forged) == 0x6988
    assert send(card, "00B0000003") == (H("AABBCC"), 0x9000)
    challenge, _ = send(card, "0084000004")
    data, status = send(card, protect(TDES, LINE_KEY, CommandApdu(0x00, 0xB0, 0, 0, le=3), challenge))
    assert status == 0x9000
    assert verify_response_mac(TDES, LINE_KEY, data, challenge) == H("AABBCC")


def test_encrypted_file_round_trip(card: FmcosCard) -> None:
    fresh_mf(card)
    assert sw(card, "80E0000707E80010F0F1FFFF") == 0x9000
    assert sw(card, "00A40000020007") == 0x9000
    challenge, _ = send(card, "0084000004")
    body = encrypt_line(TDES, LINE_KEY, b"secret")
    assert sw(card, protect(TDES, LINE_KEY, CommandApdu(0x00, 0xD6, 0, 0, body), challenge)) == 0x9000
    assert sw(card, "00B0000006") == 0x6982  # plain read of an encrypted file refused
    challenge, _ = send(card, "0084000004")
    data, _ = send(card, protect(TDES, LINE_KEY, CommandApdu(0x00, 0xB0, 0, 0, le=6), challenge))
    assert decrypt_line(TDES, LINE_KEY, verify_response_mac(TDES, LINE_KEY, data, challenge)) == b"secret"


# --- tearing and volatile state -----------------------------------------------------------------


def test_torn_update_keeps_exactly_the_first_half(card: FmcosCard) -> None:
    fresh_mf(card)
    assert sw(card, "80E0000507280010F0F1FFFF") == 0x9000
    assert sw(card, "00A40000020005") == 0x9000
    card.tear(H("00D6000006112233445566"))
    assert sw(card, "00A40000020005") == 0x9000
    assert send(card, "00B0000006") == (H("112233000000"), 0x9000)


def test_torn_write_key_is_committed_and_state_is_lost(card: FmcosCard) -> None:
    fresh_mf(card)
    card.tear(CommandApdu(0x80, 0xD4, 0x01, 0x01, key_record(0x34, value=bytes(16))).to_bytes())
    assert 1 in {k["id"] for k in card.to_image()["mf"]["key_file"]["keys"]}
    assert sw(card, "800E000000") == 0x6982  # the security state did not survive


def test_torn_erase_is_atomic(card: FmcosCard) -> None:
    fresh_mf(card)
    card.tear(H("800E000000"))
    assert card.to_image()["mf"]["key_file"] is None


def test_torn_failed_auth_still_counts(card: FmcosCard) -> None:
    send(card, "0084000008")
    card.process(H("00A40000023F00"))  # any other command consumes the challenge
    card.tear(CommandApdu(0x00, 0x82, 0x00, 0x00, bytes(8)).to_bytes())
    assert card.to_image()["mf"]["key_file"]["keys"][0]["fourth"] == "FF"  # no challenge: 6984
    send(card, "0084000008")
    card.tear(CommandApdu(0x00, 0x82, 0x00, 0x00, bytes(8)).to_bytes())  # wrong cryptogram
    assert card.to_image()["mf"]["key_file"]["keys"][0]["fourth"] == "FE"


@pytest.mark.parametrize(
    ("apdu", "status"),
    [("00A4", 0x6700), ("00FF000000", 0x6D00), ("80A40000023F00", 0x6E00),
     ("000E000000", 0x6E00), ("00A40200023F00", 0x6A86), ("00A40000021234", 0x6A82)],
)
def test_malformed_and_unknown_commands(card: FmcosCard, apdu: str, status: int) -> None:
    assert sw(card, apdu) == status


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(apdus=st.lists(
    st.tuples(st.sampled_from([0x00, 0x04, 0x80, 0x84, 0xFF, 0x12]),
              st.sampled_from([0xA4, 0x84, 0x82, 0x88, 0x0E, 0xE0, 0xD4, 0xB0, 0xD6, 0xCA, 0x00]),
              st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40))
    .map(lambda t: bytes(t[:4]) + t[4]), min_size=1, max_size=8))
def test_process_never_raises_and_always_answers_a_status_word(apdus: list[bytes]) -> None:
    card = FmcosCard.blank(uid=UID, rng=counting_rng())
    fresh_mf(card)
    assert sw(card, "80E0000707E80200F0F1FFFF") == 0x9000  # a 512-byte encrypted file
    for apdu in apdus:
        out = card.process(apdu)
        assert len(out) >= 2
    json.dumps(card.to_image())  # the image stays serialisable whatever was sent


def test_oversized_encrypted_read_is_an_internal_error_not_an_exception(card: FmcosCard) -> None:
    fresh_mf(card)
    assert sw(card, "80E0000707E80200F0F1FFFF") == 0x9000
    assert sw(card, "00A40000020007") == 0x9000
    challenge, _ = send(card, "0084000004")
    read = protect(TDES, LINE_KEY, CommandApdu(0x00, 0xB0, 0, 0, le=256), challenge)
    assert sw(card, read) == 0x6F00


def test_reader_get_data_does_not_consume_the_card_challenge(card: FmcosCard) -> None:
    challenge, _ = send(card, "0084000008")
    assert send(card, "FFCA000000") == (UID, 0x9000)  # answered by the reader, not the card
    cryptogram = auth_cryptogram(TDES, FACTORY_KEY, challenge)
    assert sw(card, CommandApdu(0x00, 0x82, 0x00, 0x00, cryptogram)) == 0x9000
