"""PII keys from the key store: ``pii/data`` (AES-256-GCM, versioned) and ``pii/index`` (HMAC).

The registry only needs the named-secret part of the key store, described here structurally so it
does not depend on a backend. ``cipher_from_store`` loads every data-key version (old rows still
open) and seals new data under the newest one.
"""

from __future__ import annotations

from typing import Protocol

from cardsvc.errors import KeyStoreError
from cardsvc.logging import get_logger
from cardsvc.registry.pii import DATA_KEY_NAME, INDEX_KEY_NAME, KEY_SIZE, PiiCipher

log = get_logger(__name__)


class SecretStore(Protocol):
    def ensure_secret(self, name: str, size: int) -> int: ...

    def create_secret_version(self, name: str, size: int) -> int: ...

    def secret(self, name: str, version: int | None = None) -> tuple[int, bytes]: ...

    def secret_versions(self, name: str) -> list[int]: ...


def ensure_pii_keys(store: SecretStore) -> int:
    """Create the PII keys if absent; returns the current data-key version."""
    store.ensure_secret(INDEX_KEY_NAME, KEY_SIZE)
    return store.ensure_secret(DATA_KEY_NAME, KEY_SIZE)


def new_data_key(store: SecretStore) -> int:
    """A new ``pii/data`` version; new data is sealed under it, ``members rekey`` moves old rows."""
    version = store.create_secret_version(DATA_KEY_NAME, KEY_SIZE)
    log.info("created PII data key version %d", version)
    return version


def cipher_from_store(store: SecretStore) -> PiiCipher:
    versions = store.secret_versions(DATA_KEY_NAME)
    if not versions or not store.secret_versions(INDEX_KEY_NAME):
        raise KeyStoreError("the key store has no PII keys (pii/data, pii/index)",
                            hint="run `cardsvc init --dev` for development keys; in production the key "
                                 "ceremony creates them with `cardsvc pii-keys create`")
    data = {v: store.secret(DATA_KEY_NAME, v)[1] for v in versions}
    _, index_key = store.secret(INDEX_KEY_NAME)
    return PiiCipher(data, max(versions), index_key)
