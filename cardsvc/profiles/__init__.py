"""Firmware profiles: TOML files under ``firmware_profiles/`` describing one card product each."""

from cardsvc.profiles.loader import (
    AtrPattern,
    Profile,
    load_profile,
    load_profiles,
    match_atr,
)

__all__ = ["AtrPattern", "Profile", "load_profile", "load_profiles", "match_atr"]
