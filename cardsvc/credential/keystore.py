"""The key store contract, the issuer-key life cycle (pure functions) and the backend factory.

Two kinds of material live in a key store:

* **signing keys** — issuer keys (sign credentials) and the bundle key (signs trust bundles), each
  with a short ``kid``, a pinned algorithm, a state and a signing window;
* **named, versioned symmetric secrets** — ``card-master/<role>`` (AN10922 master keys, version =
  card key version), ``pii/data``, ``pii/index`` … handed out as bytes to the code that uses them.

Life cycle of an issuer key: ``active`` (signs inside ``[not_before, not_after)``) → ``retired``
(verify-only: credentials issued before the cut-off still verify) → ``revoked`` (nothing verifies).
A rotation pre-publishes the new key: it starts signing ``overlap`` after the rotation and the old
key's cut-off is set to that same moment, so bundles refreshed within the overlap already know it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from cardsvc.config import DEV_KEY_PASSPHRASE, Environment, Settings
from cardsvc.credential.cose import Algorithm
from cardsvc.credential.keys import IssuerKey, KeyState, Signer, new_kid
from cardsvc.errors import KeyStoreError

MAX_SECRET_SIZE = 64


@dataclass(frozen=True, slots=True)
class Pkcs11Config:
    """Where the PKCS#11 key store lives: module path, token label and user PIN."""

    module: Path
    token_label: str
    pin: str = field(repr=False)  # never in logs or tracebacks


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """What may be shown about a named secret's version: never its value.

    ``created`` is ``None`` for versions written before the stores recorded it.
    """

    name: str
    version: int
    created: datetime | None


class KeyStore(Protocol):
    """What issuance, registry and the CLI need from a key store, whatever the backend."""

    def issuer_keys(self) -> list[IssuerKey]: ...

    def bundle_keys(self) -> list[IssuerKey]: ...

    def create_issuer_key(self, alg: Algorithm, *, not_before: datetime) -> IssuerKey: ...

    def create_bundle_key(self, alg: Algorithm, *, not_before: datetime) -> IssuerKey: ...

    def rotate_issuer_key(self, alg: Algorithm, *, now: datetime, overlap: timedelta) -> IssuerKey: ...

    def retire_issuer_key(self, kid: bytes, *, at: datetime) -> IssuerKey: ...

    def revoke_issuer_key(self, kid: bytes) -> IssuerKey: ...

    def issuer_signer(self, *, now: datetime) -> Signer: ...

    def bundle_signer(self, *, now: datetime) -> Signer: ...

    def ensure_secret(self, name: str, size: int) -> int: ...

    def create_secret_version(self, name: str, size: int) -> int: ...

    def secret(self, name: str, version: int | None = None) -> tuple[int, bytes]: ...

    def secret_versions(self, name: str) -> list[int]: ...

    def secret_info(self, name: str) -> list[SecretVersion]: ...


def open_key_store(settings: Settings, *, pkcs11: Pkcs11Config | None = None) -> KeyStore:
    """The configured key store — the one function every caller opens keys through.

    PKCS#11 when ``pkcs11`` is given or the settings name a module (``CARDSVC_PKCS11_MODULE``,
    ``_TOKEN``, ``_PIN``), else the encrypted file store. Refuses an empty passphrase, and the
    development default outside ``env=dev``.
    """
    config = pkcs11 if pkcs11 is not None else pkcs11_config(settings)
    if config is not None:
        from cardsvc.credential.hsmstore import Pkcs11KeyStore

        return Pkcs11KeyStore.open(config)
    from cardsvc.credential.filestore import FileKeyStore

    passphrase = settings.key_passphrase.get_secret_value()
    if not passphrase:
        raise KeyStoreError("the key store passphrase is empty", hint="set CARDSVC_KEY_PASSPHRASE")
    if passphrase == DEV_KEY_PASSPHRASE and settings.env is not Environment.dev:
        raise KeyStoreError("the development passphrase is refused outside env=dev",
                            hint="set CARDSVC_KEY_PASSPHRASE to a real secret")
    return FileKeyStore(settings.key_store_dir, passphrase)


def pkcs11_config(settings: Settings) -> Pkcs11Config | None:
    """The token the settings name, or ``None`` for the file store."""
    if settings.pkcs11_module is None:
        return None
    return Pkcs11Config(settings.pkcs11_module, settings.pkcs11_token,
                        settings.pkcs11_pin.get_secret_value())


class KeyCreation:
    """The three ways a backend adds a signing key, all through the backend's ``_add_key``."""

    def _add_key(self, role: str, alg: Algorithm, not_before: datetime, *, rotate: bool) -> IssuerKey:
        raise NotImplementedError

    def create_issuer_key(self, alg: Algorithm, *, not_before: datetime) -> IssuerKey:
        return self._add_key("issuer", alg, not_before, rotate=False)

    def create_bundle_key(self, alg: Algorithm, *, not_before: datetime) -> IssuerKey:
        return self._add_key("bundle", alg, not_before, rotate=True)

    def rotate_issuer_key(self, alg: Algorithm, *, now: datetime, overlap: timedelta) -> IssuerKey:
        """The new key signs from ``now + overlap``; keys still signing then get that cut-off."""
        return self._add_key("issuer", alg, now + overlap, rotate=True)


# --- pure life-cycle functions shared by the backends -------------------------------------------


def unused_kid(existing: Iterable[bytes]) -> bytes:
    taken = set(existing)
    for _ in range(1000):
        kid = new_kid()
        if kid not in taken:
            return kid
    raise KeyStoreError("no free key id left; revoke and purge old keys")


def new_key(kid: bytes, alg: Algorithm, public_key: bytes, not_before: datetime) -> IssuerKey:
    return IssuerKey(kid, alg, public_key, KeyState.active, not_before, None)


def rotated(keys: Sequence[IssuerKey], new: IssuerKey) -> list[IssuerKey]:
    """Add ``new``; every key still signing after ``new.not_before`` gets that moment as cut-off."""
    cutoff = new.not_before
    out = [
        dataclasses.replace(k, not_after=cutoff)
        if k.state is KeyState.active and (k.not_after is None or k.not_after > cutoff) else k
        for k in keys
    ]
    return [*out, new]


def retired(keys: Sequence[IssuerKey], kid: bytes, at: datetime) -> list[IssuerKey]:
    """Mark ``kid`` retired with cut-off ``at`` (or its earlier cut-off)."""
    key = find_key(keys, kid)
    if key.state is KeyState.revoked:
        raise KeyStoreError(f"key {kid.hex()} is revoked; it cannot be retired")
    cutoff = at if key.not_after is None else min(at, key.not_after)
    return _replace(keys, dataclasses.replace(key, state=KeyState.retired, not_after=cutoff))


def revoked(keys: Sequence[IssuerKey], kid: bytes) -> list[IssuerKey]:
    return _replace(keys, dataclasses.replace(find_key(keys, kid), state=KeyState.revoked))


def signing_key(keys: Sequence[IssuerKey], now: datetime) -> IssuerKey:
    """The key that signs at ``now``: active, inside its window, the most recent one."""
    candidates = [k for k in keys if k.may_sign_at(now)]
    if not candidates:
        raise KeyStoreError("no active signing key at this time",
                            hint="run `cardsvc keys init` or `cardsvc keys rotate`")
    return max(candidates, key=lambda k: k.not_before)


def find_key(keys: Sequence[IssuerKey], kid: bytes) -> IssuerKey:
    for key in keys:
        if key.kid == kid:
            return key
    raise KeyStoreError(f"no key with id {kid.hex()}")


def _replace(keys: Sequence[IssuerKey], new: IssuerKey) -> list[IssuerKey]:
    return [new if k.kid == new.kid else k for k in keys]


def check_secret_request(name: str, size: int) -> None:
    if not name or len(name) > 64 or not name.isascii() or not name.isprintable():
        raise KeyStoreError(f"invalid secret name {name!r}")
    if not 1 <= size <= MAX_SECRET_SIZE:
        raise KeyStoreError(f"secret size must be 1..{MAX_SECRET_SIZE} bytes")


def secret_infos(name: str, versions: Iterable[int],
                 created: dict[int, int]) -> list[SecretVersion]:
    """Version records from a store's version list and its ``{version: unix seconds}`` map."""
    return [SecretVersion(name, v, datetime.fromtimestamp(created[v], UTC) if v in created else None)
            for v in sorted(versions)]


def pick_version(name: str, versions: Sequence[int], version: int | None) -> int:
    if not versions:
        raise KeyStoreError(f"no secret named {name!r}", hint="create it with ensure_secret()")
    chosen = max(versions) if version is None else version
    if chosen not in versions:
        raise KeyStoreError(f"secret {name!r} has no version {version}")
    return chosen
