"""The NDEF file content the NTAG 424 DNA driver writes, and its parsers (NFC Forum URI RTD)."""

from __future__ import annotations

import pytest

from cardsvc.drivers.ntag424_ndef import (
    card_record,
    ndef_content,
    parse_card_record,
    parse_uri_message,
    sdm_settings,
)
from cardsvc.errors import CardIntegrityError, ConfigError
from cardsvc.profiles.ntag424 import FileSettings, Ntag424Config

H = bytes.fromhex


def test_uri_record_layout_and_round_trip(cfg: Ntag424Config) -> None:
    ndef = ndef_content(cfg, "https://verify.example.cn/t")
    # NLEN ‖ D1 01 <payload length> 55 ‖ 04 (= "https://") ‖ rest of the URI
    assert ndef[2:6] == H("D1 01") + bytes((ndef[4],)) + b"U"
    assert ndef[6] == 0x04 and int.from_bytes(ndef[:2], "big") == len(ndef) - 2
    url = parse_uri_message(ndef[2:])
    assert url == b"https://verify.example.cn/t?p=" + b"0" * 32 + b"&m=" + b"0" * 16
    assert parse_uri_message(ndef_content(cfg, "http://x.cn/a?b=1")[2:]).startswith(b"http://x.cn/a?b=1&p=")


def test_mirror_offsets_point_at_the_placeholders(cfg: Ntag424Config) -> None:
    ndef = ndef_content(cfg, "https://verify.example.cn/t")
    sdm = sdm_settings(cfg, ndef)
    assert ndef[sdm.picc_offset - 2 : sdm.picc_offset] == b"p="
    assert ndef[sdm.mac_offset - 2 : sdm.mac_offset] == b"m="
    assert sdm.mac_input_offset == sdm.mac_offset  # empty MAC input
    # the chip would accept these settings for a 256-byte file (same bounds check as the emulator)
    settings = FileSettings(0x00, cfg.files["ndef"].access.rights(), 256, sdm)
    assert FileSettings.parse(settings.to_bytes()) == settings


@pytest.mark.parametrize("url", ["https://verify.example.cn/打卡", "", None])
def test_base_url_must_be_present_and_ascii(cfg: Ntag424Config, url: str | None) -> None:
    with pytest.raises(ConfigError):
        ndef_content(cfg, url)


def test_card_record_round_trip_and_refusals(cfg: Ntag424Config) -> None:
    record = card_record(cfg, "31010100000042", bytes(100))
    assert record[:3] == H("435201") and parse_card_record(record + bytes(20)) == ("31010100000042", 100)
    with pytest.raises(ConfigError, match="ASCII"):
        card_record(cfg, "３１０", bytes(10))  # full-width digits are not ASCII


@pytest.mark.parametrize("raw", [b"", H("435201"), H("4352016405") + b"3101", H("4352026405") + b"31010",
                                 H("4352016402") + H("FFFE")])
def test_foreign_or_short_card_records_are_integrity_errors(raw: bytes) -> None:
    with pytest.raises(CardIntegrityError):
        parse_card_record(raw)


@pytest.mark.parametrize("message", [b"", H("D101"), H("D10100") + b"U", H("D10101") + b"U",
                                     H("D10105") + b"U" + H("04616263"), H("D10201") + b"U" + H("04")])
def test_malformed_uri_messages_are_integrity_errors(message: bytes) -> None:
    with pytest.raises(CardIntegrityError):
        parse_uri_message(message)
