"""PKCS#11 key store (python-pkcs11), tested on SoftHSM2.

Signing keys are generated inside the token, non-extractable and sensitive; signing happens in the
token (``CKM_EDDSA``; ES256 hashes on the host and signs with raw ``CKM_ECDSA``, which SoftHSM2
supports where ``CKM_ECDSA_SHA256`` is not). Named secrets (AN10922 master keys, PII keys) are
generic-secret objects that the host can read, because the code that uses them runs on the host
(drivers and the verifier take master-key bytes; the token could diversify with a non-extractable
AES key via ECB + CBC — see docs/operations.md §3 — once they take a diversifier instead).
The public catalogue (key records, secret versions) is a private data object on the token, so
the token is self-contained. One writer at a time (the ``cardsvc keys`` CLI).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cbor2
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from cardsvc.credential import keystore as lifecycle
from cardsvc.credential.cose import Algorithm
from cardsvc.credential.keys import IssuerKey, Signer, key_from_map, key_to_map
from cardsvc.credential.keystore import Pkcs11Config
from cardsvc.errors import KeyStoreError
from cardsvc.logging import get_logger

CATALOG_LABEL = "cardsvc-catalog"
_OID = {Algorithm.eddsa: "1.3.101.112", Algorithm.es256: "1.2.840.10045.3.1.7"}
_KEY_TYPE = {Algorithm.eddsa: KeyType.EC_EDWARDS, Algorithm.es256: KeyType.EC}
_GEN = {Algorithm.eddsa: Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Algorithm.es256: Mechanism.EC_KEY_PAIR_GEN}
_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Pkcs11Signer:
    """Signs inside the token with a non-extractable private key."""

    kid: bytes
    alg: Algorithm
    handle: Any  # pkcs11.PrivateKey
    lock: threading.Lock  # the store's: a PKCS#11 session runs one operation at a time

    def sign(self, data: bytes) -> bytes:
        try:
            with self.lock:
                if self.alg is Algorithm.eddsa:
                    return bytes(self.handle.sign(data, mechanism=Mechanism.EDDSA))
                digest = hashlib.sha256(data).digest()
                return bytes(self.handle.sign(digest, mechanism=Mechanism.ECDSA))
        except pkcs11.PKCS11Error as exc:
            raise KeyStoreError(f"token refused to sign: {type(exc).__name__}") from exc


@dataclass
class _Catalog:
    generation: int = 0
    issuer: list[IssuerKey] | None = None
    bundle: list[IssuerKey] | None = None
    secrets: dict[str, list[int]] | None = None
    created: dict[str, dict[int, int]] | None = None  # secret versions' unix times


class Pkcs11KeyStore(lifecycle.KeyCreation):
    """Key store on a PKCS#11 token (see the module docstring)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._secrets: dict[tuple[str, int], bytes] = {}  # a secret version never changes

    @classmethod
    def open(cls, config: Pkcs11Config) -> Pkcs11KeyStore:
        """Load the module, find the token, log in; any failure → ``KeyStoreError`` up front."""
        if not config.module.exists():
            raise KeyStoreError(f"PKCS#11 module {config.module} not found",
                                hint="install softhsm2 or the HSM vendor's module")
        try:
            token = pkcs11.lib(str(config.module)).get_token(token_label=config.token_label)
            session = _login(token, config.pin)
        except pkcs11.NoSuchToken:
            raise KeyStoreError(f"no PKCS#11 token labelled {config.token_label!r}") from None
        except pkcs11.PinIncorrect:
            raise KeyStoreError("wrong PKCS#11 user PIN") from None
        except (pkcs11.PKCS11Error, RuntimeError) as exc:
            raise KeyStoreError(f"cannot open the PKCS#11 token: {type(exc).__name__}") from None
        return cls(session)

    def close(self) -> None:
        self._session.close()

    # --- signing keys --------------------------------------------------------------------------

    def issuer_keys(self) -> list[IssuerKey]:
        return list(self._catalog().issuer or [])

    def bundle_keys(self) -> list[IssuerKey]:
        return list(self._catalog().bundle or [])

    def retire_issuer_key(self, kid: bytes, *, at: datetime) -> IssuerKey:
        cat = self._update(lambda c: setattr(c, "issuer", lifecycle.retired(c.issuer or [], kid, at)))
        return lifecycle.find_key(cat.issuer or [], kid)

    def revoke_issuer_key(self, kid: bytes) -> IssuerKey:
        cat = self._update(lambda c: setattr(c, "issuer", lifecycle.revoked(c.issuer or [], kid)))
        return lifecycle.find_key(cat.issuer or [], kid)

    def issuer_signer(self, *, now: datetime) -> Signer:
        return self._signer(lifecycle.signing_key(self.issuer_keys(), now))

    def bundle_signer(self, *, now: datetime) -> Signer:
        return self._signer(lifecycle.signing_key(self.bundle_keys(), now))

    def _add_key(self, role: str, alg: Algorithm, not_before: datetime, *, rotate: bool) -> IssuerKey:
        created: list[IssuerKey] = []

        def change(cat: _Catalog) -> None:
            known = [k.kid for k in (*(cat.issuer or []), *(cat.bundle or []))]
            kid = lifecycle.unused_kid([*known, *self._token_kids()])
            key = lifecycle.new_key(kid, alg, self._generate(kid, alg), not_before)
            keys = (cat.issuer if role == "issuer" else cat.bundle) or []
            setattr(cat, role, lifecycle.rotated(keys, key) if rotate else [*keys, key])
            created.append(key)

        self._update(change)
        _log.info("created %s key %s (%s) in the token", role, created[0].kid.hex(), alg.label)
        return created[0]

    def _generate(self, kid: bytes, alg: Algorithm) -> bytes:
        params = self._session.create_domain_parameters(
            _KEY_TYPE[alg], {Attribute.EC_PARAMS: encode_named_curve_parameters(_OID[alg])}, local=True)
        public, _private = params.generate_keypair(
            mechanism=_GEN[alg], store=True, id=kid, label=_key_label(kid),
            private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
        )
        return _unwrap_point(bytes(public[Attribute.EC_POINT]))

    def _token_kids(self) -> list[bytes]:
        """Ids of every key object on the token (orphans of an interrupted change included)."""
        return [bytes(obj[Attribute.ID]) for obj in self._session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY})]

    def _signer(self, key: IssuerKey) -> Signer:
        try:
            handle = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                           label=_key_label(key.kid))
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
            raise KeyStoreError(f"private key {key.kid.hex()} is missing from the token") from None
        return Pkcs11Signer(key.kid, key.alg, handle, self._lock)

    # --- named secrets -------------------------------------------------------------------------

    def ensure_secret(self, name: str, size: int) -> int:
        lifecycle.check_secret_request(name, size)
        existing = self.secret_versions(name)
        return max(existing) if existing else self._new_secret(name, size, only_if_absent=True)

    def create_secret_version(self, name: str, size: int) -> int:
        lifecycle.check_secret_request(name, size)
        return self._new_secret(name, size, only_if_absent=False)

    def secret(self, name: str, version: int | None = None) -> tuple[int, bytes]:
        if version is not None and (name, version) in self._secrets:
            return version, self._secrets[name, version]
        chosen = lifecycle.pick_version(name, self.secret_versions(name), version)
        try:
            with self._lock:
                obj = self._session.get_key(object_class=ObjectClass.SECRET_KEY,
                                            label=_secret_label(name, chosen))
                value = bytes(obj[Attribute.VALUE])
        except pkcs11.PKCS11Error:
            raise KeyStoreError(f"secret {name!r} v{chosen} is missing from the token") from None
        self._secrets[name, chosen] = value
        return chosen, value

    def secret_versions(self, name: str) -> list[int]:
        return sorted((self._catalog().secrets or {}).get(name, []))

    def secret_info(self, name: str) -> list[lifecycle.SecretVersion]:
        cat = self._catalog()
        return lifecycle.secret_infos(name, (cat.secrets or {}).get(name, []),
                                      (cat.created or {}).get(name, {}))

    def _new_secret(self, name: str, size: int, *, only_if_absent: bool) -> int:
        made: list[int] = []

        def change(cat: _Catalog) -> None:
            secrets = cat.secrets if cat.secrets is not None else {}
            versions = secrets.setdefault(name, [])
            if only_if_absent and versions:
                made.append(max(versions))
                return
            version = max(versions, default=0) + 1
            self._session.create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                Attribute.LABEL: _secret_label(name, version), Attribute.VALUE: os.urandom(size),
                Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: False,
                Attribute.EXTRACTABLE: True,
            })
            versions.append(version)
            cat.secrets = secrets
            cat.created = cat.created if cat.created is not None else {}
            cat.created.setdefault(name, {})[version] = int(time.time())
            made.append(version)

        self._update(change)
        return made[0]

    # --- catalogue -----------------------------------------------------------------------------

    def _catalog_objects(self) -> list[tuple[_Catalog, Any]]:
        found = []
        for obj in self._session.get_objects({Attribute.CLASS: ObjectClass.DATA,
                                              Attribute.LABEL: CATALOG_LABEL}):
            found.append((_decode_catalog(bytes(obj[Attribute.VALUE])), obj))
        return sorted(found, key=lambda pair: pair[0].generation)

    def _catalog(self) -> _Catalog:
        with self._lock:
            objects = self._catalog_objects()
        return objects[-1][0] if objects else _Catalog(0, [], [], {})

    def _update(self, change: Callable[[_Catalog], None]) -> _Catalog:
        """Write the new catalogue object first, then drop the old ones (a crash leaves two;
        the higher generation wins)."""
        with self._lock:
            old = self._catalog_objects()
            catalog = old[-1][0] if old else _Catalog(0, [], [], {})
            change(catalog)
            catalog.generation += 1
            self._session.create_object({
                Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: CATALOG_LABEL,
                Attribute.APPLICATION: "cardsvc", Attribute.VALUE: _encode_catalog(catalog),
                Attribute.TOKEN: True, Attribute.PRIVATE: True,
            })
            for _catalog, obj in old:
                obj.destroy()
        return catalog


def _login(token: Any, pin: str) -> Any:
    """A read-write user session. PKCS#11 login is per process: when another session of this
    process is already logged in, the new session shares that login."""
    try:
        return token.open(user_pin=pin, rw=True)
    except pkcs11.UserAlreadyLoggedIn:
        return token.open(rw=True)


def _key_label(kid: bytes) -> str:
    return f"cardsvc-key-{kid.hex()}"


def _secret_label(name: str, version: int) -> str:
    return f"cardsvc-secret-{name}-v{version}"


def _unwrap_point(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point on most tokens; accept both forms."""
    if value[:2] in (b"\x04\x20", b"\x04\x41") and len(value) == value[1] + 2:
        return value[2:]
    return value


def _encode_catalog(catalog: _Catalog) -> bytes:
    return cbor2.dumps({
        "generation": catalog.generation,
        "issuer_keys": [key_to_map(k) for k in catalog.issuer or []],
        "bundle_keys": [key_to_map(k) for k in catalog.bundle or []],
        "secrets": catalog.secrets or {},
        "secret_created": catalog.created or {},
    }, canonical=True)


def _decode_catalog(raw: bytes) -> _Catalog:
    try:
        data: Any = cbor2.loads(raw)
        return _Catalog(
            generation=int(data["generation"]),
            issuer=[key_from_map(k) for k in data["issuer_keys"]],
            bundle=[key_from_map(k) for k in data["bundle_keys"]],
            secrets={str(n): [int(v) for v in vs] for n, vs in data["secrets"].items()},
            created={str(n): {int(v): int(t) for v, t in ts.items()}
                     for n, ts in data.get("secret_created", {}).items()},
        )
    except Exception as exc:  # a corrupt file can make cbor2 raise anything (see _cbor.py)
        raise KeyStoreError("the token's key catalogue is corrupt") from exc
