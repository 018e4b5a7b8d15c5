"""Key material for issuance: master keys of a profile's roles, and the keyed chip-UID hash.

Master keys live in the key store as named, versioned secrets ``card-master/<role>`` where the
role is what the profile names (``ntag424_app_master`` …); a batch pins one version. The database
never sees a card key or a UID: it stores the key version and ``HMAC-SHA256(card/uid-index, UID)``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from cardsvc.drivers.base import MasterKeys
from cardsvc.errors import KeyStoreError
from cardsvc.profiles import Profile

MASTER_PREFIX = "card-master/"
UID_INDEX_SECRET = "card/uid-index"  # noqa: S105 - a key-store entry name, not a secret
MASTER_KEY_SIZE = 16
UID_INDEX_SIZE = 32


class SecretSource(Protocol):
    def ensure_secret(self, name: str, size: int) -> int: ...

    def secret(self, name: str, version: int | None = None) -> tuple[int, bytes]: ...

    def secret_versions(self, name: str) -> list[int]: ...


def master_roles(profile: Profile) -> tuple[str, ...]:
    """The master-key roles a profile's key slots are diversified from, in slot order, no repeats."""
    slots = getattr(profile.config, "keys", None) or ()
    roles = [getattr(s, "master", None) or getattr(s, "master_role", None) for s in slots]
    if not roles or not all(isinstance(r, str) for r in roles):
        raise KeyStoreError(f"profile {profile.name!r} names no master-key roles")
    return tuple(dict.fromkeys(str(r) for r in roles))


def ensure_master_keys(store: SecretSource, profile: Profile) -> int:
    """Create the profile's master keys if absent (development); returns their common version."""
    for role in master_roles(profile):
        store.ensure_secret(MASTER_PREFIX + role, MASTER_KEY_SIZE)
    return current_key_version(store, profile)


def current_key_version(store: SecretSource, profile: Profile) -> int:
    """The newest version that every master role of the profile has."""
    common: set[int] | None = None
    for role in master_roles(profile):
        versions = set(store.secret_versions(MASTER_PREFIX + role))
        common = versions if common is None else common & versions
    if not common:
        raise KeyStoreError(f"the key store has no common master-key version for profile {profile.name}",
                            hint="create card-master/<role> secrets for every role of the profile")
    return max(common)


def load_master_keys(store: SecretSource, profile: Profile, *, version: int,
                     system_identifier: bytes) -> MasterKeys:
    keys = {}
    for role in master_roles(profile):
        _, key = store.secret(MASTER_PREFIX + role, version)
        if len(key) != MASTER_KEY_SIZE:
            raise KeyStoreError(f"master key {MASTER_PREFIX + role} v{version} is not "
                                f"{MASTER_KEY_SIZE} bytes")
        keys[role] = key
    return MasterKeys(version=version, keys=keys, system_identifier=system_identifier)


def system_identifier(issuer: str) -> bytes:
    """AN10922 system identifier: the issuer code in ASCII."""
    try:
        return issuer.encode("ascii")
    except UnicodeEncodeError as exc:
        raise KeyStoreError("the issuer code must be ASCII to serve as system identifier") from exc


def ensure_uid_index(store: SecretSource) -> None:
    """Create the UID index key once; every station must share it (one key store)."""
    store.ensure_secret(UID_INDEX_SECRET, UID_INDEX_SIZE)


class UidHasher:
    """``HMAC-SHA256(card/uid-index, UID)``: looks chips up without storing their UID."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise KeyStoreError("the UID index key is too short")
        self._key = key

    @classmethod
    def from_store(cls, store: SecretSource) -> UidHasher:
        """The key store's ``card/uid-index`` (created once by :func:`ensure_uid_index`)."""
        if not store.secret_versions(UID_INDEX_SECRET):
            raise KeyStoreError("the key store has no card/uid-index secret",
                                hint="`cardsvc batch create` creates it with the first batch")
        return cls(store.secret(UID_INDEX_SECRET)[1])

    def __call__(self, uid: bytes) -> bytes:
        return hmac.new(self._key, uid, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "UidHasher(<key hidden>)"
