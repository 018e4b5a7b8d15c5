"""Profile loading: every error names the file and the field; nothing half-loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardsvc.errors import ProfileError
from cardsvc.profiles import AtrPattern, load_profile, load_profiles

HEAD = """
name = "x-card"
family = "ntag424"
description = "test"
[match]
atr = [{ value = "3B8180018080" }]
"""


def _write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("name = ", "", "not valid TOML"),
        (HEAD.replace('"ntag424"', '"nope"'), "", "unknown family"),
        (HEAD.replace("3B8180018080", "3B81ZZ"), "match.atr[0].value", "not valid hex"),
        (HEAD.replace('{ value = "3B8180018080" }', ""), "match.atr", "at least 1"),
        (HEAD.replace('name = "x-card"', 'name = "X Card"'), "name", "pattern"),
        (HEAD, "ntag424", "missing [ntag424] table"),
        (HEAD + "\n[ntag424]\nbogus_field = 1\n", "ntag424.bogus_field", ""),
        (HEAD.replace('value = "3B8180018080"', 'value = "3B81", mask = "FF"'), "match.atr[0]", "mask"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.file == str(path)
    assert info.value.field.startswith(field)
    assert message in str(info.value)


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "absent.toml")
    with pytest.raises(ProfileError, match="no firmware profiles"):
        load_profiles(tmp_path)


def test_one_bad_file_loads_nothing(tmp_path: Path) -> None:
    _write(tmp_path, "garbage = [", "b.toml")
    with pytest.raises(ProfileError) as info:
        load_profiles(tmp_path)
    assert info.value.file.endswith("b.toml")


def test_atr_mask_matching() -> None:
    pattern = AtrPattern(value=bytes.fromhex("3B8F8001"), mask=bytes.fromhex("FFF0FFFF"))
    assert pattern.matches(bytes.fromhex("3B818001"))
    assert not pattern.matches(bytes.fromhex("3B818002"))
    assert not pattern.matches(bytes.fromhex("3B8180"))
