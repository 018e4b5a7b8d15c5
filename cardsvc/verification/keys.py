"""Key material the verifier needs, loaded once from the key store and then passed around as bytes.

* :class:`IssuerTrust` — issuer keys (public) and the issuer code: what a QR credential is checked
  against. A ``kid`` in a credential is only a lookup hint; the key record decides.
* :class:`CardKeys` — the AN10922 master keys by version and role (``card-master/<role>``), the UID
  index key (``card/uid-index``) and the system identifier. The names are the ones issuance writes
  (``cardsvc.issuance.keys``); the verifier may not import issuance, so they are repeated here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from cardsvc.credential.keys import IssuerKey, SignatureCheck, load_public_key, signature_check
from cardsvc.errors import KeyStoreError
from cardsvc.profiles import Profile

MASTER_PREFIX = "card-master/"
UID_INDEX_SECRET = "card/uid-index"  # noqa: S105 - a key name, not a key
MASTER_KEY_SIZE = 16


class SecretSource(Protocol):
    def secret(self, name: str, version: int | None = None) -> tuple[int, bytes]: ...

    def secret_versions(self, name: str) -> list[int]: ...


@dataclass(frozen=True, slots=True, eq=False)
class IssuerTrust:
    """The issuer keys a server-side QR verification accepts."""

    issuer: str | None
    keys: tuple[IssuerKey, ...]
    public: Mapping[bytes, tuple[IssuerKey, SignatureCheck]] = field(repr=False)

    @classmethod
    def of(cls, issuer: str | None, keys: Iterable[IssuerKey]) -> IssuerTrust:
        keys = tuple(keys)
        public = {k.kid: (k, signature_check(k.alg, load_public_key(k.alg, k.public_key))) for k in keys}
        return cls(issuer, keys, MappingProxyType(public))

    def key(self, kid: bytes) -> tuple[IssuerKey, SignatureCheck] | None:
        return self.public.get(kid)


@dataclass(frozen=True, slots=True, eq=False)
class CardKeys:
    """Master keys ``{version: {role: key}}``, the UID index key and the AN10922 system identifier."""

    masters: Mapping[int, Mapping[str, bytes]] = field(repr=False)
    uid_index_key: bytes = field(repr=False)
    system_identifier: bytes

    def __post_init__(self) -> None:
        if len(self.uid_index_key) < 16:
            raise KeyStoreError("the UID index key is too short")

    def uid_hash(self, uid: bytes) -> bytes:
        """``HMAC-SHA256(card/uid-index, UID)`` — how the card table names a chip."""
        return hmac.new(self.uid_index_key, uid, hashlib.sha256).digest()

    def master(self, version: int) -> Mapping[str, bytes]:
        keys = self.masters.get(version)
        if keys is None:
            raise KeyStoreError(f"no card master keys of version {version}")
        return keys

    def versions(self) -> list[int]:
        """Newest first."""
        return sorted(self.masters, reverse=True)


def master_roles(profiles: Iterable[Profile]) -> set[str]:
    """Every master-key role the profiles' key slots name (NTAG ``master``, FMCOS ``master_role``)."""
    roles: set[str] = set()
    for profile in profiles:
        for slot in getattr(profile.config, "keys", None) or ():
            role = getattr(slot, "master", None) or getattr(slot, "master_role", None)
            if isinstance(role, str):
                roles.add(role)
    return roles


def card_keys_from_store(store: SecretSource, profiles: Iterable[Profile], *, issuer: str) -> CardKeys:
    """Load every version of every master role present, and the UID index key."""
    if not store.secret_versions(UID_INDEX_SECRET):
        raise KeyStoreError("the key store has no card/uid-index secret",
                            hint="it is created with the first card batch")
    masters: dict[int, dict[str, bytes]] = {}
    for role in sorted(master_roles(profiles)):
        for version in store.secret_versions(MASTER_PREFIX + role):
            masters.setdefault(version, {})[role] = store.secret(MASTER_PREFIX + role, version)[1]
    frozen = {v: MappingProxyType(keys) for v, keys in masters.items()}
    return CardKeys(MappingProxyType(frozen), store.secret(UID_INDEX_SECRET)[1], issuer.encode("ascii"))
