"""A profile asked for a card key whose master-key role is missing says so with a typed error."""

from __future__ import annotations

import pytest

from cardsvc.errors import KeyStoreError
from cardsvc.profiles.ntag424 import Ntag424Config


def test_missing_master_role_is_a_key_store_error(cfg: Ntag424Config) -> None:
    with pytest.raises(KeyStoreError, match="no card master key for role"):
        cfg.card_key(1, {}, uid=bytes(7), system_identifier=b"")
