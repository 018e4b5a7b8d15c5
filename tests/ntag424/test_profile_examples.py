"""Every ``[[examples]]`` table of every ntag424 profile runs here; plus the [ntag424] model's refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cardsvc.cardcrypto import sun
from cardsvc.cardcrypto.an10922 import diversify_aes128
from cardsvc.errors import CardsvcError
from cardsvc.profiles import Profile, load_profiles
from cardsvc.profiles.ntag424 import FileSettings, Ntag424Config

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
    ],
)
def test_config_refusals(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Ntag424Config.model_validate(table)


def test_defaults_equal_the_shipped_profile(profile: Profile) -> None:
    assert Ntag424Config() == profile.config
