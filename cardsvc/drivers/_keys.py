"""Checks every driver makes on a plan's master keys before it sends a single APDU."""

from __future__ import annotations

from collections.abc import Iterable

from cardsvc.drivers.base import MasterKeys
from cardsvc.errors import ConfigError

MAX_KEY_VERSION = 0xFF  # cards store one byte; version 0 means "still the factory key"


def check_master_keys(master_keys: MasterKeys, roles: Iterable[str]) -> None:
    """Every master-key role the profile needs is present and the version is 1..255.

    A :class:`ConfigError`, not a card error: every card of the batch would fail the same way.
    """
    missing = sorted(set(roles) - set(master_keys.keys))
    if missing:
        raise ConfigError(f"master keys missing for roles {missing} (key version {master_keys.version})")
    if not 1 <= master_keys.version <= MAX_KEY_VERSION:
        raise ConfigError(f"master key version must be 1..{MAX_KEY_VERSION} (0 means factory), "
                          f"got {master_keys.version}")
