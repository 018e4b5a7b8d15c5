"""The default key store: one CBOR file, every secret AES-256-GCM encrypted under a scrypt KEK.

``keys.cbor`` holds the scrypt parameters and salt, a check value (wrong passphrase → clear
``KeyStoreError`` before anything is signed), the public key records, and per entry
``nonce ‖ ciphertext`` with the entry's name as associated data, so entries cannot be swapped.
The public key records are authenticated too (an AES-GCM tag under the KEK over their CBOR): the
trust bundle is built from them, so a record edited in the file — another public key, a revoked
key made active — must fail to load rather than be signed into the next bundle. Whole-file
rollback to an older, genuine version cannot be detected here.
Changes happen under an exclusive ``flock`` on ``keys.lock``: re-read, modify, write a temporary
file, fsync, rename, fsync the directory. Readers never see a half-written file.
Each secret version's creation time is kept beside it (informational, for ``card-keys list``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from cardsvc.credential import keystore as lifecycle
from cardsvc.credential.cose import Algorithm
from cardsvc.credential.keys import (
    IssuerKey,
    Signer,
    SoftwareSigner,
    generate_private_key,
    key_from_map,
    key_to_map,
    load_private_key,
    private_bytes,
    public_bytes,
)
from cardsvc.errors import KeyStoreError
from cardsvc.logging import get_logger

FORMAT = 2  # 2: authenticated key catalogue (format 1 stores were pre-release and are refused)
FILE_NAME = "keys.cbor"
SCRYPT_N = 2**15
MAX_SCRYPT_N = 2**20  # 1 GiB of scrypt memory: a larger value in the file is corruption, not a cost
_CHECK_PLAINTEXT = b"cardsvc key store"
_NONCE, _TAG = 12, 16
_CATALOGUE_AAD = b"cardsvc/keys/catalogue\x00"
_log = get_logger(__name__)


@dataclass
class _Document:
    """The decoded file. Entries stay encrypted until asked for."""

    salt: bytes
    scrypt_n: int
    check: bytes
    issuer: list[IssuerKey] = field(default_factory=list)
    bundle: list[IssuerKey] = field(default_factory=list)
    private: dict[bytes, bytes] = field(default_factory=dict)  # kid -> sealed private key
    secrets: dict[str, dict[int, bytes]] = field(default_factory=dict)
    created: dict[str, dict[int, int]] = field(default_factory=dict)  # secret versions' unix times
    catalogue: bytes = b""  # nonce ‖ GCM tag over the key records (see the module docstring)


class FileKeyStore(lifecycle.KeyCreation):
    """Encrypted-file key store (see the module docstring)."""

    def __init__(self, directory: Path, passphrase: str, *, scrypt_n: int = SCRYPT_N) -> None:
        if not passphrase:
            raise KeyStoreError("the key store passphrase is empty")
        self._dir = directory
        self._path = directory / FILE_NAME
        self._passphrase = passphrase.encode("utf-8")
        self._scrypt_n = scrypt_n
        self._kek: tuple[bytes, AESGCM] | None = None  # (salt, cipher)
        self._cache: tuple[tuple[int, int, int], _Document] | None = None
        self._empty: _Document | None = None

    @property
    def path(self) -> Path:
        return self._path

    def exists(self) -> bool:
        return self._path.exists()

    # --- signing keys --------------------------------------------------------------------------

    def issuer_keys(self) -> list[IssuerKey]:
        return list(self._read().issuer)

    def bundle_keys(self) -> list[IssuerKey]:
        return list(self._read().bundle)

    def retire_issuer_key(self, kid: bytes, *, at: datetime) -> IssuerKey:
        doc = self._update(lambda d: setattr(d, "issuer", lifecycle.retired(d.issuer, kid, at)))
        return lifecycle.find_key(doc.issuer, kid)

    def revoke_issuer_key(self, kid: bytes) -> IssuerKey:
        doc = self._update(lambda d: setattr(d, "issuer", lifecycle.revoked(d.issuer, kid)))
        return lifecycle.find_key(doc.issuer, kid)

    def issuer_signer(self, *, now: datetime) -> Signer:
        return self._signer(self._read().issuer, now)

    def bundle_signer(self, *, now: datetime) -> Signer:
        return self._signer(self._read().bundle, now)

    def _add_key(self, role: str, alg: Algorithm, not_before: datetime, *, rotate: bool) -> IssuerKey:
        private = generate_private_key(alg)
        created: list[IssuerKey] = []

        def change(doc: _Document) -> None:
            kid = lifecycle.unused_kid(k.kid for k in (*doc.issuer, *doc.bundle))
            key = lifecycle.new_key(kid, alg, public_bytes(private.public_key()), not_before)
            keys = doc.issuer if role == "issuer" else doc.bundle
            new_keys = lifecycle.rotated(keys, key) if rotate else [*keys, key]
            setattr(doc, role, new_keys)
            doc.private[kid] = self._seal(doc, f"key/{kid.hex()}", private_bytes(private))
            created.append(key)

        self._update(change)
        _log.info("created %s key %s (%s)", role, created[0].kid.hex(), alg.label)
        return created[0]

    def _signer(self, keys: list[IssuerKey], now: datetime) -> Signer:
        key = lifecycle.signing_key(keys, now)
        doc = self._read()
        sealed = doc.private.get(key.kid)
        if sealed is None:
            raise KeyStoreError(f"private key {key.kid.hex()} is missing from the key store")
        raw = self._open(doc, f"key/{key.kid.hex()}", sealed)
        return SoftwareSigner(key.kid, key.alg, load_private_key(key.alg, raw))

    # --- named secrets -------------------------------------------------------------------------

    def ensure_secret(self, name: str, size: int) -> int:
        lifecycle.check_secret_request(name, size)
        existing = self.secret_versions(name)
        if existing:
            return max(existing)
        return self._new_secret(name, size, only_if_absent=True)

    def create_secret_version(self, name: str, size: int) -> int:
        lifecycle.check_secret_request(name, size)
        return self._new_secret(name, size, only_if_absent=False)

    def secret(self, name: str, version: int | None = None) -> tuple[int, bytes]:
        doc = self._read()
        versions = doc.secrets.get(name, {})
        chosen = lifecycle.pick_version(name, sorted(versions), version)
        return chosen, self._open(doc, f"secret/{name}/{chosen}", versions[chosen])

    def secret_versions(self, name: str) -> list[int]:
        return sorted(self._read().secrets.get(name, {}))

    def secret_info(self, name: str) -> list[lifecycle.SecretVersion]:
        doc = self._read()
        return lifecycle.secret_infos(name, doc.secrets.get(name, {}), doc.created.get(name, {}))

    def _new_secret(self, name: str, size: int, *, only_if_absent: bool) -> int:
        made: list[int] = []

        def change(doc: _Document) -> None:
            versions = doc.secrets.setdefault(name, {})
            if only_if_absent and versions:
                made.append(max(versions))
                return
            version = max(versions, default=0) + 1
            versions[version] = self._seal(doc, f"secret/{name}/{version}", os.urandom(size))
            doc.created.setdefault(name, {})[version] = int(time.time())
            made.append(version)

        self._update(change)
        return made[0]

    # --- encryption ----------------------------------------------------------------------------

    def _cipher(self, doc: _Document) -> AESGCM:
        if self._kek is None or self._kek[0] != doc.salt:
            kdf = Scrypt(salt=doc.salt, length=32, n=doc.scrypt_n, r=8, p=1)
            cipher = AESGCM(kdf.derive(self._passphrase))
            self._kek = (doc.salt, cipher)
            self._check_passphrase(cipher, doc.check)
        return self._kek[1]

    def _check_passphrase(self, cipher: AESGCM, check: bytes) -> None:
        try:
            cipher.decrypt(check[:12], check[12:], b"check")
        except InvalidTag:
            self._kek = None
            raise KeyStoreError("wrong key store passphrase",
                                hint="check CARDSVC_KEY_PASSPHRASE") from None

    def _seal(self, doc: _Document, label: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._cipher(doc).encrypt(nonce, plaintext, label.encode("utf-8"))

    def _open(self, doc: _Document, label: str, sealed: bytes) -> bytes:
        return self._unseal(doc, sealed, label.encode("utf-8"), f"key store entry {label}")

    def _unseal(self, doc: _Document, sealed: bytes, aad: bytes, what: str) -> bytes:
        if len(sealed) < _NONCE + _TAG:  # a short nonce would make AESGCM raise ValueError
            raise KeyStoreError(f"{what} is truncated")
        try:
            return self._cipher(doc).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except InvalidTag:
            raise KeyStoreError(f"{what} fails authentication") from None

    def _seal_catalogue(self, doc: _Document) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._cipher(doc).encrypt(nonce, b"", _catalogue_aad(doc))

    def _check_catalogue(self, doc: _Document) -> None:
        self._unseal(doc, doc.catalogue, _catalogue_aad(doc), "the key records' authentication tag")

    # --- file ----------------------------------------------------------------------------------

    def unlock(self) -> None:
        """Derive the KEK and check the passphrase now (creating nothing)."""
        if self.exists():
            self._cipher(self._read())

    def _read(self) -> _Document:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            if self._empty is None:
                self._empty = self._fresh()
            return self._empty
        marker = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._cache is None or self._cache[0] != marker:
            doc = _decode(self._path.read_bytes())
            self._check_catalogue(doc)
            self._cache = (marker, doc)
        return self._cache[1]

    def _fresh(self) -> _Document:
        salt = os.urandom(16)
        kdf = Scrypt(salt=salt, length=32, n=self._scrypt_n, r=8, p=1)
        cipher = AESGCM(kdf.derive(self._passphrase))
        self._kek = (salt, cipher)
        nonce = os.urandom(12)
        return _Document(salt, self._scrypt_n, nonce + cipher.encrypt(nonce, _CHECK_PLAINTEXT, b"check"))

    def _update(self, change: Callable[[_Document], None]) -> _Document:
        with self._locked():
            self._cache = None
            doc = self._read()
            try:
                change(doc)
                doc.catalogue = self._seal_catalogue(doc)
                _atomic_write(self._path, _encode(doc))
            finally:  # the next read sees the file, never a half-changed cached document
                self._cache = self._empty = None
        return doc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._dir / "keys.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _encode(doc: _Document) -> bytes:
    return cbor2.dumps({
        "format": FORMAT,
        "kdf": {"alg": "scrypt", "salt": doc.salt, "n": doc.scrypt_n, "r": 8, "p": 1},
        "check": doc.check,
        "issuer_keys": [key_to_map(k) for k in doc.issuer],
        "bundle_keys": [key_to_map(k) for k in doc.bundle],
        "private": doc.private,
        "secrets": doc.secrets,
        "secret_created": doc.created,
        "catalogue": doc.catalogue,
    }, canonical=True)


def _catalogue_aad(doc: _Document) -> bytes:
    records = [[key_to_map(k) for k in doc.issuer], [key_to_map(k) for k in doc.bundle]]
    return _CATALOGUE_AAD + cbor2.dumps(records, canonical=True)


def _decode(raw: bytes) -> _Document:
    try:
        data: Any = cbor2.loads(raw)
        if data["format"] != FORMAT:
            raise KeyStoreError(f"unsupported key store format {data['format']!r}",
                                hint="format 1 was pre-release: create the key store again")
        kdf = data["kdf"]
        doc = _Document(
            salt=kdf["salt"], scrypt_n=kdf["n"], check=data["check"],
            issuer=[key_from_map(k) for k in data["issuer_keys"]],
            bundle=[key_from_map(k) for k in data["bundle_keys"]],
            private=dict(data["private"]), secrets={n: dict(v) for n, v in data["secrets"].items()},
            catalogue=data["catalogue"],
            created={n: dict(v) for n, v in data.get("secret_created", {}).items()},
        )
    except KeyStoreError:
        raise
    except Exception as exc:  # a corrupt file can make cbor2 raise anything (see _cbor.py)
        raise KeyStoreError("key store file is corrupt") from exc
    _check_types(doc)
    return doc


def _check_types(doc: _Document) -> None:
    """Refuse a decoded file whose fields would make scrypt or AES-GCM raise a builtin error."""
    n = doc.scrypt_n
    sealed = [doc.check, doc.catalogue, *doc.private.values(),
              *(s for versions in doc.secrets.values() for s in versions.values())]
    if not (type(n) is int and 2 <= n <= MAX_SCRYPT_N and n & (n - 1) == 0
            and isinstance(doc.salt, bytes) and len(doc.salt) >= 16
            and isinstance(doc.check, bytes) and len(doc.check) >= _NONCE + _TAG
            and all(isinstance(k, bytes) for k in doc.private)
            and all(isinstance(v, int) for versions in doc.secrets.values() for v in versions)
            and all(type(t) is int for times in doc.created.values() for t in times.values())
            and all(isinstance(s, bytes) for s in sealed)):
        raise KeyStoreError("key store file is corrupt (fields of the wrong type or size)")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover .tmp keeps its old mode through O_CREAT, and rename keeps it
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
