"""Runs every ``[[examples]]`` entry of the FMCOS profiles (each cites its public source)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cardsvc.apdu.model import CommandApdu
from cardsvc.cardcrypto import sm4
from cardsvc.cardcrypto.an10922 import diversify_2tdea
from cardsvc.cardcrypto.fmcos import TDES, auth_cryptogram, protect, verify_response_mac
from cardsvc.emulator.fmcos import FmcosCard
from cardsvc.errors import CardIntegrityError, CardsvcError
from cardsvc.profiles import Profile, load_profile
from cardsvc.profiles.fmcos import FmcosConfig

PROFILES_DIR = Path(__file__).resolve().parents[2] / "firmware_profiles"
ERRORS: dict[str, type[CardsvcError]] = {"card_integrity": CardIntegrityError}


def H(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def _fmcos_profiles() -> list[Profile]:
    profiles = [load_profile(p) for p in sorted(PROFILES_DIR.glob("*.toml"))]
    return [p for p in profiles if p.family == "fmcos"]


def _cases() -> list[Any]:
    return [pytest.param(p, ex, id=f"{p.name}-{i}-{ex['kind']}")
            for p in _fmcos_profiles() for i, ex in enumerate(p.examples)]


def _line_mac(_profile: Profile, ex: dict[str, Any]) -> None:
    command = CommandApdu.from_bytes(H(ex["command"]))
    assert protect(TDES, H(ex["key"]), command, H(ex["challenge"])).to_bytes() == H(ex["expected"])


def _response_mac(_profile: Profile, ex: dict[str, Any]) -> None:
    response = H(ex["data"]) + H(ex["mac"])
    assert verify_response_mac(TDES, H(ex["key"]), response, H(ex["challenge"])) == H(ex["data"])


def _auth_cryptogram(_profile: Profile, ex: dict[str, Any]) -> None:
    if auth_cryptogram(TDES, H(ex["key"]), H(ex["challenge"])) != H(ex["expected"]):
        raise CardIntegrityError("cryptogram does not match")


def _an10922_2tdea(profile: Profile, ex: dict[str, Any]) -> None:
    m = H(ex["uid"]) + H(ex["aid"]) + H(ex.get("slot", "")) + H(ex["system_identifier"])
    assert diversify_2tdea(H(ex["master_key"]), m) == H(ex["expected"])
    if "slot" in ex:  # the profile's own derivation gives the same key for that slot
        assert isinstance(profile.config, FmcosConfig)
        slot = next(k for k in profile.config.keys if k.slot_byte == H(ex["slot"])[0])
        key = slot.derive(H(ex["master_key"]), uid=H(ex["uid"]), aid=H(ex["aid"]),
                          system_identifier=H(ex["system_identifier"]), cipher_suite="tdes")
        assert key == H(ex["expected"])


def _sm4_ecb(_profile: Profile, ex: dict[str, Any]) -> None:
    assert sm4.ecb_encrypt(H(ex["key"]), H(ex["plaintext"])) == H(ex["expected"])


def _atr(profile: Profile, ex: dict[str, Any]) -> None:
    card = FmcosCard.blank(uid=H(ex["uid"]))
    assert card.atr == H(ex["atr"])
    assert profile.matches_atr(card.atr)


RUNNERS: dict[str, Callable[[Profile, dict[str, Any]], None]] = {
    "line_mac": _line_mac,
    "response_mac": _response_mac,
    "auth_cryptogram": _auth_cryptogram,
    "an10922_2tdea": _an10922_2tdea,
    "sm4_ecb": _sm4_ecb,
    "atr": _atr,
}


def test_there_are_examples_of_every_kind() -> None:
    kinds = {ex["kind"] for p in _fmcos_profiles() for ex in p.examples}
    assert kinds == set(RUNNERS)
    assert all(ex.get("source") for p in _fmcos_profiles() for ex in p.examples)


@pytest.mark.parametrize(("profile", "example"), _cases())
def test_profile_example(profile: Profile, example: dict[str, Any]) -> None:
    runner = RUNNERS[example["kind"]]
    error = example.get("error")
    if error is None:
        runner(profile, example)
        return
    with pytest.raises(ERRORS[error]):
        runner(profile, example)


def test_profile_atr_is_distinct_from_ntag424() -> None:
    for profile in _fmcos_profiles():
        assert not profile.matches_atr(H("3B8180018080"))
