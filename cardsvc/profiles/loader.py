"""Load and validate firmware profiles; every error names the file and the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cardsvc.errors import ProfileError
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.profiles.types import HexBytes

_FAMILY_MODELS: dict[str, type[BaseModel]] = {"ntag424": Ntag424Config, "fmcos": FmcosConfig}


class AtrPattern(BaseModel):
    """An ATR to recognise: ``value`` compared under ``mask`` (all ones when absent)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: HexBytes
    mask: HexBytes | None = None

    @model_validator(mode="after")
    def _mask_fits(self) -> AtrPattern:
        if self.mask is not None and len(self.mask) != len(self.value):
            raise ValueError("mask must be as long as value")
        return self

    def matches(self, atr: bytes) -> bool:
        if len(atr) != len(self.value):
            return False
        mask = self.mask or b"\xff" * len(self.value)
        return all((a & m) == (v & m) for a, v, m in zip(atr, self.value, mask, strict=True))


class Match(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    atr: list[AtrPattern] = Field(min_length=1)


class Profile(BaseModel):
    """One card product: how to recognise it, its layout and keys, and its worked examples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    family: str
    description: str
    assumptions: list[str] = Field(default_factory=list)
    match: Match
    credential_max_size: int = Field(default=128, ge=64, le=4096)
    config: Any = None
    examples: list[dict[str, Any]] = Field(default_factory=list)
    source: Path = Path("<memory>")

    @model_validator(mode="after")
    def _family_known(self) -> Profile:
        if self.family not in _FAMILY_MODELS:
            raise ValueError(f"unknown family {self.family!r}; known: {sorted(_FAMILY_MODELS)}")
        return self

    def matches_atr(self, atr: bytes) -> bool:
        return any(p.matches(atr) for p in self.match.atr)


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


def _raise_from(exc: ValidationError, source: Path, prefix: tuple[str, ...] = ()) -> ProfileError:
    first = exc.errors()[0]
    return ProfileError(first["msg"], file=str(source), field=_field_path(prefix + first["loc"]))


def load_profile(path: Path) -> Profile:
    """Parse one profile file; raises :class:`ProfileError` naming the file and field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"not valid TOML: {exc}", file=str(path)) from exc
    family = raw.get("family")
    family_table = raw.pop(family, None) if isinstance(family, str) else None
    try:
        profile = Profile.model_validate({**raw, "source": path})
    except ValidationError as exc:
        raise _raise_from(exc, path) from exc
    if family_table is None:
        raise ProfileError(f"missing [{family}] table", file=str(path), field=str(family))
    try:
        config = _FAMILY_MODELS[profile.family].model_validate(family_table)
    except ValidationError as exc:
        raise _raise_from(exc, path, (profile.family,)) from exc
    return profile.model_copy(update={"config": config})


def load_profiles(directory: Path) -> dict[str, Profile]:
    """Every ``*.toml`` in ``directory`` by profile name; all-or-nothing."""
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.toml")):
        profile = load_profile(path)
        if profile.name in profiles:
            raise ProfileError(f"duplicate profile name {profile.name!r}", file=str(path),
                               field="name")
        profiles[profile.name] = profile
    if not profiles:
        raise ProfileError("no firmware profiles found", file=str(directory))
    return profiles


def match_atr(profiles: dict[str, Profile], atr: bytes) -> list[Profile]:
    """Profiles whose ATR patterns match (several when the ATR alone cannot tell them apart)."""
    return [p for p in profiles.values() if p.matches_atr(atr)]
