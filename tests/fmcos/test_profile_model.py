"""The ``[fmcos]`` profile model: what it accepts, what it refuses (naming file and field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardsvc.errors import CryptoError, ProfileError
from cardsvc.profiles import load_profile
from cardsvc.profiles.fmcos import ALWAYS, NEVER, FmcosConfig, allows
from tests.fmcos.conftest import PROFILE_PATH

TEXT = PROFILE_PATH.read_text(encoding="utf-8")


def _load(tmp_path: Path, text: str) -> FmcosConfig:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    config = load_profile(path).config
    assert isinstance(config, FmcosConfig)
    return config


def test_shipped_profile_loads(cfg: FmcosConfig) -> None:
    assert cfg.cipher_suite == "tdes"
    assert [k.role for k in cfg.keys_in("adf")] == ["app_admin", "internal_auth", "line_protection"]
    assert cfg.file("credential").protection == "mac"
    assert cfg.key("mf_admin").attributes(1) == bytes((0xF0, 0xF0, 0x01, 0x55))
    assert cfg.key("internal_auth").attributes(7) == bytes((0xF0, 0xF0, 0x07, 0x00))
    assert cfg.key("line_protection").attributes(7) == bytes((0xF0, 0xF0, 0xFF, 0xFF))


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('use_right = "F0"', 'use_right = "F"', "fmcos.keys[0].use_right"),
        ('use_right = "F0"', 'use_right = "ZZ"', "fmcos.keys[0].use_right"),
        ('fid = "1001"', 'fid = "10"', "fmcos.application.fid"),
        ('df_name = "D1560000014654553031"', 'df_name = "D156"', "fmcos.application"),
        ('cipher_suite = "tdes"', 'cipher_suite = "aes"', "fmcos.cipher_suite"),
        ('role = "app_admin"', 'role = "other_admin"', "fmcos"),
        ('fid = "0002"', 'fid = "0001"', "fmcos"),
        ('role = "status"', 'role = "card_number"', "fmcos"),
        ("key_id = 1", "key_id = 0", "fmcos"),
        ('diversification_aid = "F01001"', 'diversification_aid = "F010"', "fmcos"),
    ],
)
def test_malformed_fmcos_tables_name_the_field(tmp_path: Path, old: str, new: str,
                                               field: str) -> None:
    assert old in TEXT
    with pytest.raises(ProfileError) as caught:
        _load(tmp_path, TEXT.replace(old, new, 1))
    assert caught.value.field == field


def test_access_rule_convention() -> None:
    assert all(allows(ALWAYS, s) for s in range(16))
    assert not any(allows(NEVER, s) for s in range(16))
    assert [s for s in range(16) if allows(0xF1, s)] == list(range(1, 16))
    assert [s for s in range(16) if allows(0x22, s)] == [2]


def test_diversification_input_is_cut_to_an10922_limits(cfg: FmcosConfig) -> None:
    slot = cfg.key("internal_auth")
    master = bytes(range(16))
    long_si = b"CN-310101-FTU-EXTRA"

    def derive(si: bytes, uid: bytes = bytes(4), suite: str = "tdes") -> bytes:
        return slot.derive(master, uid=uid, aid=cfg.diversification_aid, system_identifier=si,
                           cipher_suite=suite)

    assert derive(long_si) == derive(long_si[:7])  # 4 + 3 + 1 + 7 = 15 bytes
    assert derive(long_si) != derive(b"CN-310X")  # the 7th byte still counts
    assert derive(long_si, suite="sm4") != derive(long_si[:7], suite="sm4")  # AES allows 31
    with pytest.raises(CryptoError):
        derive(b"x", uid=bytes(12))
    with pytest.raises(CryptoError):
        derive(b"x", suite="des")


def test_card_key_is_the_slot_derivation_with_profile_aid_and_suite(cfg: FmcosConfig) -> None:
    master, uid, si = bytes(range(16)), bytes.fromhex("A1B2C3D4"), b"CN-310101-FTU"
    expected = cfg.key("internal_auth").derive(master, uid=uid, aid=cfg.diversification_aid,
                                               system_identifier=si, cipher_suite="tdes")
    assert cfg.card_key("internal_auth", master, uid=uid, system_identifier=si) == expected
    # the slot byte in M keeps two slots apart even under one master key
    assert cfg.card_key("line_protection", master, uid=uid, system_identifier=si) != expected
    assert cfg.card_key("internal_auth", master, uid=uid[::-1], system_identifier=si) != expected
