"""The emulated NTAG 424 DNA on its own: factory state, access rules, EV2, SDM, failures, tearing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto import aes, sun
from cardsvc.cardcrypto.ev2 import CommMode, Ev2Authenticator, SecureMessaging, change_key_data
from cardsvc.emulator.base import VirtualCard, card_class
from cardsvc.emulator.ntag424 import Ntag424Card
from cardsvc.profiles.ntag424 import FileSettings
from tests.ntag424.conftest import UID, counting_rng

H = bytes.fromhex
SELECT_APP = "00A4040C07D2760000850101"


def tx(card: Ntag424Card, apdu: str | bytes) -> tuple[bytes, int]:
    raw = card.process(H(apdu) if isinstance(apdu, str) else apdu)
    return raw[:-2], int.from_bytes(raw[-2:], "big")


def native(card: Ntag424Card, ins: int, data: bytes = b"") -> tuple[bytes, int]:
    return tx(card, CommandApdu(0x90, ins, data=data, le=256).to_bytes())


def auth(card: Ntag424Card, key_no: int, key: bytes = bytes(16)) -> SecureMessaging:
    pcd = Ev2Authenticator(key, bytes(range(16)))
    challenge, sw = native(card, 0x71, bytes((key_no, 0)))
    assert sw == 0x91AF
    reply, sw = native(card, 0xAF, pcd.answer_challenge(challenge))
    assert sw == 0x9100
    return pcd.finish(reply)


def secure(card: Ntag424Card, sm: SecureMessaging, ins: int, header: bytes, data: bytes,
           mode: CommMode) -> bytes:
    body, sw = native(card, ins, sm.protect_command(ins, header, data, mode))
    assert sw == 0x9100, hex(sw)
    return sm.open_response(0x00, body, mode)


@pytest.fixture
def fresh(card: Ntag424Card) -> Ntag424Card:
    assert tx(card, SELECT_APP)[1] == 0x9000
    return card


def test_protocol_and_family_registry(card: Ntag424Card) -> None:
    assert isinstance(card, VirtualCard)
    assert card_class("ntag424") is Ntag424Card
    assert card.atr == H("3B8180018080")
    assert tx(card, "FFCA000000") == (UID, 0x9000)
    assert tx(card, "FFCA010000")[1] == 0x6B00


def test_factory_state(fresh: Ntag424Card) -> None:
    # NT4H2421Gx delivery configuration; the CC/NDEF and file 03 settings also appear in
    # AN12196 §6 GetFileSettings traces: 00 00 E0EE 000100 and 00 03 3023 800000
    assert native(fresh, 0xF5, b"\x01") == (H("0000E0EE200000"), 0x9100)
    assert native(fresh, 0xF5, b"\x02") == (H("0000E0EE000100"), 0x9100)
    assert native(fresh, 0xF5, b"\x03") == (H("00033023800000"), 0x9100)
    assert native(fresh, 0xF5, b"\x04")[1] == 0x91F0
    assert [native(fresh, 0x64, bytes((n,))) for n in range(5)] == [(b"\x00", 0x9100)] * 5
    assert native(fresh, 0x64, b"\x05")[1] == 0x9140
    assert tx(fresh, "00A4000C02E103")[1] == 0x9000
    cc, sw = tx(fresh, "00B0000000")
    assert sw == 0x9000 and cc[:2] == H("0017") and H("E104") in cc and len(cc) == 32


def test_get_version_frames(fresh: Ntag424Card) -> None:
    first, sw1 = native(fresh, 0x60)
    second, sw2 = native(fresh, 0xAF)
    third, sw3 = native(fresh, 0xAF)
    assert (first[:2], sw1, sw2, sw3) == (H("0404"), 0x91AF, 0x91AF, 0x9100)
    assert len(second) == 7 and third[:7] == UID
    assert native(fresh, 0xAF)[1] == 0x911C  # no chain pending


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [("00A4040007D2760000850102", 0x6A82), ("00A4000C02E1FF", 0x6A82), ("00FE000000", 0x6D00),
     ("80A4000000", 0x6E00), ("00A4", 0x6700), ("00B0010000", 0x6B00)],
)
def test_iso_errors(fresh: Ntag424Card, apdu: str, sw: int) -> None:
    tx(fresh, "00A4000C02E104")
    assert tx(fresh, apdu)[1] == sw


def test_ef_needs_the_application(card: Ntag424Card) -> None:
    assert tx(card, "00A4000C02E104")[1] == 0x6A82
    assert native(card, 0x71, b"\x00\x00")[1] == 0x919D


def test_iso_access_rules(fresh: Ntag424Card) -> None:
    tx(fresh, "00A4000C02E104")
    assert tx(fresh, "00D6000003AABBCC")[1] == 0x9000
    assert tx(fresh, "00B0000003") == (H("AABBCC"), 0x9000)
    assert tx(fresh, "00D600FF03AABBCC")[1] == 0x6B00
    tx(fresh, "00A4000C02E105")
    assert tx(fresh, "00B0000010")[1] == 0x6982  # file 03 is not free
    assert tx(fresh, "00D6000001AA")[1] == 0x6982


def test_authentication_replays_an12196_transcript() -> None:
    # AN12196 §6.6 (key 0 authentication); values as in icedevml/nfc-ev2-crypto : test_ev2.py test_auth1.
    # The card's RNG yields RndB, then TI: the card must produce the document's exact bytes.
    rnd_b = aes.cbc_decrypt(bytes(16), aes.ZERO_BLOCK, H("A04C124213C186F22399D33AC2A30215"))
    values = [rnd_b, H("9D00C4DF")]
    card = Ntag424Card.blank(uid=UID, rng=lambda _n: values.pop(0))
    tx(card, SELECT_APP)
    assert native(card, 0x71, b"\x00\x00") == (H("A04C124213C186F22399D33AC2A30215"), 0x91AF)
    part1 = H("35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D")
    assert native(card, 0xAF, part1) == (
        H("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663"), 0x9100)


def test_mac_mode_management_commands(fresh: Ntag424Card) -> None:
    sm = auth(fresh, 0)
    assert secure(fresh, sm, 0x64, b"\x02", b"", CommMode.mac) == b"\x00"
    assert secure(fresh, sm, 0xF5, b"\x03", b"", CommMode.mac) == H("00033023800000")
    assert secure(fresh, sm, 0x51, b"", b"", CommMode.full) == UID
    assert sm.cmd_ctr == 3


def test_full_mode_data_file(fresh: Ntag424Card) -> None:
    assert native(fresh, 0xAD, H("03000000100000"))[1] == 0x919D  # no session: no access
    sm = auth(fresh, 3)  # factory: write key 3
    secure(fresh, sm, 0x8D, H("03100000050000"), b"hello", CommMode.full)
    sm = auth(fresh, 2)  # factory: read key 2
    assert secure(fresh, sm, 0xAD, H("03100000050000"), b"", CommMode.full) == b"hello"
    _, sw = native(fresh, 0xAD, sm.protect_command(0xAD, H("03000000200000"), b"", CommMode.full)[:-1]
                      + b"\x00")
    assert sw == 0x911E  # bad MAC ends the session
    assert native(fresh, 0x51, b"")[1] == 0x91AE
    sm = auth(fresh, 0)
    _, sw = native(fresh, 0xAD, sm.protect_command(0xAD, H("03000000100000"), b"", CommMode.full))
    assert sw == 0x919D  # key 0 is neither read nor read-write key of file 03


def test_boundaries_and_lengths(fresh: Ntag424Card) -> None:
    sm = auth(fresh, 3)
    for header, data, sw in [(H("03780000100000"), bytes(16), 0x91BE), (H("03000000050000"), b"abc", 0x917E)]:
        _, got = native(fresh, 0x8D, sm.protect_command(0x8D, header, data, CommMode.full))
        assert got == sw
        sm = auth(fresh, 3)


def test_wrong_key_counts_and_delays_persistently(fresh: Ntag424Card) -> None:
    for _ in range(3):
        challenge, _ = native(fresh, 0x71, b"\x00\x00")
        assert native(fresh, 0xAF, Ev2Authenticator(b"\x01" * 16, bytes(16)).answer_challenge(challenge))[1] \
            == 0x91AE
    image = fresh.to_image()
    assert image["fail"] == {"total": 3, "run": 3, "delay": 1}
    reloaded = Ntag424Card.from_image(json.loads(json.dumps(image)), rng=counting_rng())
    reloaded.power_on()
    tx(reloaded, SELECT_APP)
    assert native(reloaded, 0x71, b"\x00\x00")[1] == 0x91AD  # the delay survived power loss
    sm = auth(reloaded, 0)  # after the delay, the right key works and resets the run
    assert sm.ti and reloaded.to_image()["fail"] == {"total": 0, "run": 0, "delay": 0}


def test_change_key_rules(fresh: Ntag424Card) -> None:
    sm = auth(fresh, 1)
    data = change_key_data(b"\x22" * 16, 1, bytes(16))
    _, sw = native(fresh, 0xC4, sm.protect_command(0xC4, b"\x02", data, CommMode.full))
    assert sw == 0x919D  # only the app master key changes keys
    sm = auth(fresh, 0)
    wrong_old = change_key_data(b"\x22" * 16, 1, old_key=b"\x01" * 16)
    assert native(fresh, 0xC4, sm.protect_command(0xC4, b"\x02", wrong_old, CommMode.full))[1] == 0x911E
    sm = auth(fresh, 0)
    secure(fresh, sm, 0xC4, b"\x02", change_key_data(b"\x22" * 16, 5, bytes(16)), CommMode.full)
    assert native(fresh, 0x64, b"\x02")[1] == 0x911E  # in a session, commands need their MAC
    sm = auth(fresh, 0)
    assert secure(fresh, sm, 0x64, b"\x02", b"", CommMode.mac) == b"\x05"
    sm = auth(fresh, 2, b"\x22" * 16)
    sm = auth(fresh, 0)
    field = sm.protect_command(0xC4, b"\x00", change_key_data(b"\x33" * 16, 9), CommMode.full)
    assert native(fresh, 0xC4, field) == (b"", 0x9100)  # own key: plain answer, session over
    assert native(fresh, 0x51, b"")[1] == 0x91AE
    auth(fresh, 0, b"\x33" * 16)


def _enable_sdm(card: Ntag424Card) -> SecureMessaging:
    tx(card, "00A4000C02E104")
    url = b"https://x.example/t?p=" + b"0" * 32 + b"&m=" + b"0" * 16
    ndef = len(url).to_bytes(2, "big") + url  # not a real NDEF record: the card does not care
    assert tx(card, CommandApdu(0x00, 0xD6, 0, 0, data=ndef).to_bytes())[1] == 0x9000
    sm = auth(card, 0)
    mac_at = len(ndef) - 16
    settings = H("40E0EE") + bytes((0xC1, 0xFF, 0x12)) + (mac_at - 35).to_bytes(3, "little") \
        + mac_at.to_bytes(3, "little") * 2
    secure(card, sm, 0x5F, b"\x02", settings, CommMode.full)
    tx(card, SELECT_APP)  # ends the session
    return sm


def test_sdm_mirroring_and_counter(fresh: Ntag424Card) -> None:
    _enable_sdm(fresh)
    settings = FileSettings.parse(native(fresh, 0xF5, b"\x02")[0])
    assert settings.sdm is not None and settings.sdm.meta_read == 1 and settings.sdm.file_read == 2
    tx(fresh, "00A4000C02E104")
    nlen, _ = tx(fresh, "00B0000002")
    head, _ = tx(fresh, "00B0000220")
    tail, _ = tx(fresh, "00B00022" + f"{int.from_bytes(nlen, 'big') - 32:02X}")
    url = (head + tail).decode()
    reading = sun.verify_sun(sun.parse_sun_url(url), meta_read_key=bytes(16),
                             file_read_key=lambda _uid: bytes(16))
    assert (reading.uid, reading.counter) == (UID, 1)  # chunked ISO reads: one mirror per selection
    data, _ = native(fresh, 0xAD, H("02000000000000"))
    again = sun.verify_sun(sun.parse_sun_url(data[2 : 2 + int.from_bytes(data[:2], "big")].decode()),
                           meta_read_key=bytes(16), file_read_key=lambda _uid: bytes(16))
    assert again.counter == 2 and fresh.to_image()["sdm_read_ctr"] == 2


def test_sdm_counter_resets_and_bad_offsets_are_refused(fresh: Ntag424Card) -> None:
    _enable_sdm(fresh)
    native(fresh, 0xAD, H("02000000000000"))
    _enable_sdm(fresh)  # same settings: counter kept
    assert fresh.to_image()["sdm_read_ctr"] == 1
    sm = auth(fresh, 0)
    bad = H("40E0EE") + bytes((0xC1, 0xFF, 0x12)) + (250).to_bytes(3, "little") + bytes(6)
    _, sw = native(fresh, 0x5F, sm.protect_command(0x5F, b"\x02", bad, CommMode.full))
    assert sw == 0x919E


def test_tearing_semantics(fresh: Ntag424Card) -> None:
    tx(fresh, "00A4000C02E104")
    fresh.tear(CommandApdu(0x00, 0xD6, 0, 0, data=b"\x11" * 100).to_bytes())
    assert fresh.to_image()["files"]["2"]["data"][:2] == "00"  # atomic single frame: not applied
    tx(fresh, SELECT_APP)
    tx(fresh, "00A4000C02E104")
    fresh.tear(CommandApdu(0x00, 0xD6, 0, 0, data=b"\x22" * 200).to_bytes())
    data = bytes.fromhex(fresh.to_image()["files"]["2"]["data"])
    assert data[:128] == b"\x22" * 128 and data[128:200] == bytes(72)  # chained: first frame stays
    tx(fresh, SELECT_APP)
    sm = auth(fresh, 0)
    fresh.tear(CommandApdu(0x90, 0xC4, data=sm.protect_command(
        0xC4, b"\x04", change_key_data(b"\x44" * 16, 3, bytes(16)), CommMode.full), le=256).to_bytes())
    assert fresh.to_image()["keys"][4] == {"key": "44" * 16, "version": 3}  # atomic: applied
    assert native(fresh, 0x51, b"")[1] in (0x919D, 0x91AE)  # session and selection are gone


def test_image_round_trip_and_malformed_images(card: Ntag424Card) -> None:
    image = card.to_image()
    assert Ntag424Card.from_image(json.loads(json.dumps(image))).to_image() == image
    broken = json.loads(json.dumps(image))
    broken["uid"] = "0411"
    with pytest.raises(ValueError):
        Ntag424Card.from_image(broken)
    del broken["keys"]
    with pytest.raises(KeyError):
        Ntag424Card.from_image(broken)


def test_blank_cards_get_nxp_uids() -> None:
    one, two = Ntag424Card.blank(), Ntag424Card.blank()
    assert one.uid[0] == two.uid[0] == 0x04 and len(one.uid) == 7 and one.uid != two.uid


def test_mac_mode_file(fresh: Ntag424Card) -> None:
    sm = auth(fresh, 0)
    secure(fresh, sm, 0x5F, b"\x03", H("01") + H("3033"), CommMode.full)  # MAC mode, R=W=RW=3, C=0
    tx(fresh, SELECT_APP)
    sm = auth(fresh, 3)
    field = sm.protect_command(0x8D, H("03000000040000"), b"abcd", CommMode.mac)
    assert field[7:11] == b"abcd"  # MAC mode: data in clear, then the MAC
    body, sw = native(fresh, 0x8D, field)
    assert sw == 0x9100 and sm.open_response(0x00, body, CommMode.mac) == b""
    assert secure(fresh, sm, 0xAD, H("03000000040000"), b"", CommMode.mac) == b"abcd"
    tampered = bytearray(sm.protect_command(0x8D, H("03000000040000"), b"abcd", CommMode.mac))
    tampered[8] ^= 1
    assert native(fresh, 0x8D, bytes(tampered))[1] == 0x911E
    assert fresh.to_image()["files"]["3"]["data"][:8] == b"abcd".hex().upper()


def test_plain_uid_and_counter_mirror_matches_sdm_backend_vector() -> None:
    # nfc-developer/sdm-backend : tests/test_libsdm.py test_plain_sdm: UID 041E3C8A2D6B80, counter
    # 000006 (ASCII, MSB first), zero K_SDMFileRead -> SDMMAC 4B00064004B0B3D3
    card = Ntag424Card.blank(uid=H("041E3C8A2D6B80"), rng=counting_rng())
    tx(card, SELECT_APP)
    tx(card, "00A4000C02E104")
    body = b"u=" + b"0" * 14 + b"&c=" + b"0" * 6 + b"&m=" + b"0" * 16
    assert tx(card, CommandApdu(0x00, 0xD6, 0, 0, data=body).to_bytes())[1] == 0x9000
    sm = auth(card, 0)
    uid_at, ctr_at, mac_at = 2, 19, 28  # file offsets of the three values
    settings = H("40E0EE") + bytes((0xC1, 0xFE, 0xE2)) + b"".join(
        n.to_bytes(3, "little") for n in (uid_at, ctr_at, mac_at, mac_at))
    secure(card, sm, 0x5F, b"\x02", settings, CommMode.full)
    tx(card, SELECT_APP)
    for _ in range(5):
        native(card, 0xAD, H("02000000000000"))
    data, sw = native(card, 0xAD, H("02000000000000"))
    assert sw == 0x9100
    assert data[: len(body)] == b"u=041E3C8A2D6B80&c=000006&m=4B00064004B0B3D3"


@settings(max_examples=400, deadline=None)
@given(cla=st.sampled_from([0x00, 0x90, 0xFF, 0x80]), ins=st.sampled_from(
    [0xA4, 0xB0, 0xD6, 0xCA, 0x60, 0xAF, 0x71, 0x64, 0xF5, 0x5F, 0xC4, 0x51, 0xAD, 0x8D, 0x00]),
    p1=st.integers(0, 255), p2=st.integers(0, 255), data=st.binary(max_size=40),
    le=st.none() | st.integers(1, 256), authenticated=st.booleans())
def test_process_never_raises(cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None,
                              authenticated: bool) -> None:
    card = Ntag424Card.blank(uid=UID, rng=counting_rng())
    tx(card, SELECT_APP)
    if authenticated:
        auth(card, 0)
    out = card.process(CommandApdu(cla, ins, p1, p2, data=data, le=le).to_bytes())
    assert len(out) >= 2 and out[-2] in (0x90, 0x91, 0x6A, 0x69, 0x6B, 0x67, 0x6D, 0x6E)
    card.tear(CommandApdu(cla, ins, p1, p2, data=data, le=le).to_bytes())
    assert Ntag424Card.from_image(card.to_image()).to_image() == card.to_image()


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_get_a_status_word(raw: bytes) -> None:
    card = Ntag424Card.blank(uid=UID, rng=counting_rng())
    tx(card, SELECT_APP)
    assert len(card.process(b"\x90" + raw)) >= 2
    assert len(card.process(raw)) >= 2
    card.tear(b"\x90\x8d" + raw)
