"""SunChecker's prepared keys (PiccDecryptor, SlotDeriver) answer exactly as the one-shot path —
``Ntag424Config.verify_sun_url`` over ``card_key`` / ``decrypt_picc_data`` / ``sdm_mac`` — on many
random master keys, cards and counters; no database needed."""

from __future__ import annotations

import random
from types import MappingProxyType

import pytest

from cardsvc.cardcrypto import sun
from cardsvc.config import get_settings
from cardsvc.errors import CardIntegrityError, CryptoError, KeyStoreError, MalformedCredential
from cardsvc.profiles import Profile, load_profiles
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.verification.checks import SunChecker
from cardsvc.verification.keys import CardKeys, master_roles

NTAG = "ntag424-dna"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profiles(get_settings(env="test").effective_profiles_dir)[NTAG]


def _config(profile: Profile) -> Ntag424Config:
    assert isinstance(profile.config, Ntag424Config)
    return profile.config


def _keys(profile: Profile, rng: random.Random, versions: tuple[int, ...] = (1,),
          system_identifier: bytes = b"SZGH") -> CardKeys:
    roles = sorted(master_roles([profile]))
    masters = {v: MappingProxyType({r: rng.randbytes(16) for r in roles}) for v in versions}
    return CardKeys(MappingProxyType(masters), rng.randbytes(32), system_identifier)


def _tap(config: Ntag424Config, keys: CardKeys, version: int, uid: bytes, counter: int,
         rng: random.Random) -> tuple[str, str]:
    """The card side (as the emulator computes it): PICCData and SDMMAC hex of one read."""
    masters, si = keys.master(version), keys.system_identifier
    meta = config.card_key(config.sun.meta_read_key, masters, uid=b"", system_identifier=si)
    file_key = config.card_key(config.sun.file_read_key, masters, uid=uid, system_identifier=si)
    picc = sun.encrypt_picc_data(meta, uid, counter, rng.randbytes(5))
    return picc.hex().upper(), sun.sdm_mac(file_key, uid, counter).hex()


def test_slot_deriver_equals_key_slot_derive_for_every_slot(profile: Profile) -> None:
    config, rng = _config(profile), random.Random(424)
    for _ in range(30):
        si = rng.randbytes(rng.randrange(0, 21))  # M = UID(7) ‖ AID(3) ‖ slot ‖ SI is 11..31 bytes
        for slot in config.keys:
            master = rng.randbytes(16)
            deriver = slot.deriver(master, aid=config.diversification_aid, system_identifier=si)
            for _ in range(5):
                uid = rng.randbytes(7)
                assert deriver.derive(uid) == slot.derive(master, uid=uid, aid=config.diversification_aid,
                                                          system_identifier=si)


def test_slot_deriver_refuses_a_too_long_system_identifier_like_derive(profile: Profile) -> None:
    config = _config(profile)
    slot = config.slot(config.sun.file_read_key)
    si = bytes(21)  # 7 + 3 + 1 + 21 = 32 > 31
    with pytest.raises(CryptoError):
        slot.derive(bytes(16), uid=bytes(7), aid=config.diversification_aid, system_identifier=si)
    with pytest.raises(CryptoError):
        slot.deriver(bytes(16), aid=config.diversification_aid, system_identifier=si).derive(bytes(7))


def test_card_key_deriver_names_a_missing_master_like_card_key(profile: Profile) -> None:
    config = _config(profile)
    for call in (lambda: config.card_key(2, {}, uid=bytes(7), system_identifier=b"SZGH"),
                 lambda: config.card_key_deriver(2, {}, system_identifier=b"SZGH")):
        with pytest.raises(KeyStoreError, match="ntag424_sdm_file_read"):
            call()


def test_checker_equals_the_one_shot_verification_on_random_taps(profile: Profile) -> None:
    config, rng = _config(profile), random.Random(12196)
    for _ in range(10):
        keys = _keys(profile, rng)
        checker = SunChecker.build(profile, keys)
        for _ in range(20):
            uid, counter = rng.randbytes(7), rng.randrange(1 << 24)
            p, m = _tap(config, keys, 1, uid, counter, rng)
            url = f"https://card.example/t?p={p}&m={m}"
            expected = config.verify_sun_url(url, keys.master(1), system_identifier=keys.system_identifier)
            message = checker.message_from_params(p, m)
            assert message == checker.parse(url)
            [(version, reading)] = checker.reveal(message)
            assert (version, reading) == (1, expected)
            checker.check_mac(message, reading, version)  # raises when it does not match
            forged = sun.SunMessage(message.picc_data, bytes(b ^ 1 for b in message.mac))
            with pytest.raises(CardIntegrityError):
                checker.check_mac(forged, reading, version)


def test_checker_with_two_versions_finds_each_cards_own(profile: Profile) -> None:
    config, rng = _config(profile), random.Random(2)
    keys = _keys(profile, rng, versions=(1, 2))
    checker = SunChecker.build(profile, keys)
    for version in (1, 2):
        uid = rng.randbytes(7)
        message = checker.message_from_params(*_tap(config, keys, version, uid, 7, rng))
        readings = checker.reveal(message)
        assert (version, sun.SunReading(uid, 7)) in readings
        checker.check_mac(message, sun.SunReading(uid, 7), version)
        with pytest.raises(CardIntegrityError):
            checker.check_mac(message, sun.SunReading(uid, 7), 3 - version)


def test_checker_unknown_version_or_foreign_data_fail_as_before(profile: Profile) -> None:
    rng = random.Random(3)
    keys = _keys(profile, rng)
    checker = SunChecker.build(profile, keys)
    message = checker.message_from_params(*_tap(_config(profile), keys, 1, rng.randbytes(7), 1, rng))
    [(_, reading)] = checker.reveal(message)
    with pytest.raises(KeyStoreError):
        checker.check_mac(message, reading, 9)
    with pytest.raises(MalformedCredential):
        checker.message_from_params("00" * 15, "00" * 8)
    other = SunChecker.build(profile, _keys(profile, rng))  # other master keys: C7 once in 256
    refused = 0
    for _ in range(50):
        foreign = checker.message_from_params(*_tap(_config(profile), keys, 1, rng.randbytes(7), 1, rng))
        try:
            other.reveal(foreign)
        except CardIntegrityError:
            refused += 1
    assert refused >= 40
