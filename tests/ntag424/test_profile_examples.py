"""Every ``[[examples]]`` table of every ntag424 profile runs here; plus the [ntag424] model's refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cardsvc.cardcrypto import sun
from cardsvc.cardcrypto.an10922 import diversify_aes128
from cardsvc.errors import CardsvcError
from cardsvc.profiles import Profile, load_profiles
from cardsvc.profiles.ntag424 import AccessRights, FileSettings, Ntag424Config, SdmSettings

PROFILES_DIR = Path(__file__).resolve().parents[2] / "firmware_profiles"
H = bytes.fromhex


def _ntag_examples() -> list[Any]:
    profiles = [p for p in load_profiles(PROFILES_DIR).values() if p.family == "ntag424"]
    return [pytest.param(p, ex, id=f"{p.name}-{i}-{ex['kind']}") for p in profiles
            for i, ex in enumerate(p.examples)]


def _run_sun(example: dict[str, Any]) -> None:
    message = sun.parse_sun_url(example["url"], picc_param=example["picc_param"],
                                mac_param=example["mac_param"])
    reading = sun.verify_sun(message, meta_read_key=H(example["meta_read_key"]),
                             file_read_key=lambda _uid: H(example["file_read_key"]))
    assert reading.uid == H(example["uid"])
    assert reading.counter == example["counter"]


def _run_an10922(example: dict[str, Any]) -> None:
    assert diversify_aes128(H(example["master_key"]), H(example["m"])) == H(example["expected"])


def _run_file_settings(example: dict[str, Any]) -> None:
    raw = H(example["response"])
    settings = FileSettings.parse(raw)
    assert settings.to_bytes() == raw
    assert settings.size == example["size"]
    assert settings.sdm is not None
    assert settings.sdm.options == H(example["sdm_options"])[0]
    assert (settings.sdm.picc_offset, settings.sdm.mac_input_offset, settings.sdm.mac_offset) == (
        example["picc_offset"], example["mac_input_offset"], example["mac_offset"])


RUNNERS = {"sun": _run_sun, "an10922_aes128": _run_an10922, "file_settings": _run_file_settings}


@pytest.mark.parametrize(("profile", "example"), _ntag_examples())
def test_profile_example(profile: Profile, example: dict[str, Any]) -> None:
    assert example.get("source"), "every example cites where its values come from"
    runner = RUNNERS[example["kind"]]
    if "error" in example:
        with pytest.raises(CardsvcError) as info:
            runner(example)
        assert info.value.code == example["error"]
    else:
        runner(example)


def test_shipped_profile_has_examples_of_every_kind() -> None:
    kinds = {ex.values[1]["kind"] for ex in _ntag_examples()}
    assert kinds == set(RUNNERS)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"keys": [{"slot": 0, "role": "a", "master": "m"}]}, "each slot"),
        ({"keys": [{"slot": n, "role": f"r{n}", "master": "m"} for n in range(5)]}, "cannot be UID"),
        ({"files": {"cc": {"number": 1, "iso_id": "E103", "size": 32}}}, "exactly cc"),
        ({"diversification_aid": "0102"}, "3 bytes"),
        ({"sun": {"meta_read_key": 7}}, "less than or equal"),
        ({"files": {"cc": {"number": 1, "iso_id": "E103", "size": 32},
                    "ndef": {"number": 2, "iso_id": "E104", "size": 256},
                    "data": {"number": 3, "iso_id": "E105", "size": 128,
                             "access": {"read": "free"}}}}, "must be a key slot"),
    ],
)
def test_config_refusals(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Ntag424Config.model_validate(table)


def test_defaults_equal_the_shipped_profile(profile: Profile) -> None:
    assert Ntag424Config() == profile.config


_nibble = st.sampled_from([0, 1, 2, 3, 4, 0xE, 0xF])


@given(read=_nibble, write=_nibble, rw=_nibble, change=_nibble, comm=st.sampled_from([0, 1, 3]),
       meta=_nibble, file_read=_nibble, options=st.sampled_from([0xC1, 0xC0, 0x80, 0x40, 0xD1, 0x01]),
       offsets=st.lists(st.integers(min_value=0, max_value=100), min_size=7, max_size=7))
def test_file_settings_round_trip(read: int, write: int, rw: int, change: int, comm: int, meta: int,
                                  file_read: int, options: int, offsets: list[int]) -> None:
    sdm = SdmSettings(options=options, meta_read=meta, file_read=file_read, counter_retrieval=0xF)
    names = SdmSettings.offset_fields(options, meta, file_read)
    sdm = dataclasses.replace(sdm, **dict(zip(names, sorted(offsets), strict=False)))
    settings = FileSettings(comm, AccessRights(read, write, rw, change), 256, sdm)
    assert FileSettings.parse(settings.to_bytes()) == settings
    assert FileSettings.parse_change(settings.change_bytes(), 256) == settings


def test_change_file_settings_codec_an12196() -> None:
    # AN12196 rev 1.8 §6.9 Table 19: CmdData 40 00E0 C1 F121 200000 430000 430000 — SDM on, plain;
    # read free, write/read-write/change key 0; UID + counter mirrored as ASCII (C1); counter
    # retrieval key 1, meta read key 2 (encrypted PICCData at 0x20), file read key 1, MAC at 0x43
    raw = H("4000E0C1F121200000430000430000")
    settings = FileSettings.parse_change(raw, 256)
    assert (settings.comm_bits, settings.access) == (0x00, AccessRights(read=0xE, write=0, read_write=0,
                                                                         change=0))
    assert settings.sdm == SdmSettings(options=0xC1, meta_read=2, file_read=1, counter_retrieval=1,
                                       picc_offset=0x20, mac_input_offset=0x43, mac_offset=0x43)
    assert settings.change_bytes() == raw


@pytest.mark.parametrize("raw", ["", "0100", "0000E0EE0001", "0080E0EE000100", "0040EEEE000100C1"])
def test_malformed_file_settings(raw: str) -> None:
    with pytest.raises(ValueError):
        FileSettings.parse(H(raw))
