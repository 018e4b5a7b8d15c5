"""Build the verification service from settings and a key store (what ``cardsvc serve`` runs).

Loaded once per worker: issuer keys (a rotation needs a restart), card master keys of every
version, the UID index key, the PII cipher (for admin/clerk ID views) and the eligibility-list
secret. Missing card keys or PII keys only disable what needs them (logged), so a fresh install
serves QR verification before its first batch exists.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from cardsvc.config import Settings
from cardsvc.credential.keys import IssuerKey, Signer
from cardsvc.errors import KeyStoreError
from cardsvc.logging import get_logger
from cardsvc.profiles import load_profiles
from cardsvc.registry.keys import SecretStore, cipher_from_store
from cardsvc.registry.pii import PiiCipher
from cardsvc.verification.db import Database
from cardsvc.verification.keys import CardKeys, IssuerTrust, card_keys_from_store
from cardsvc.verification.service import VerificationService
from cardsvc.verification.tokens import Clock, utc_now
from cardsvc.verification.trustbundle import TrustBundleCache

log = get_logger(__name__)

LIST_SECRET = "verification/eligibility-list"  # noqa: S105 - a key name
LIST_SECRET_SIZE = 32


class VerifierKeyStore(SecretStore, Protocol):
    def issuer_keys(self) -> list[IssuerKey]: ...

    def bundle_signer(self, *, now: datetime) -> Signer: ...


def _optional(what: str, load: Callable[[], object]) -> object | None:
    try:
        return load()
    except KeyStoreError as exc:
        log.warning("%s not loaded: %s", what, exc.message)
        return None


def build_verification(settings: Settings, db: Database, store: VerifierKeyStore, *,
                       clock: Clock = utc_now) -> VerificationService:
    profiles = load_profiles(settings.effective_profiles_dir)
    issuer_keys = store.issuer_keys()
    card_keys = _optional("card keys", lambda: card_keys_from_store(store, profiles.values(),
                                                                    issuer=settings.issuer))
    cipher = _optional("PII cipher", lambda: cipher_from_store(store))
    store.ensure_secret(LIST_SECRET, LIST_SECRET_SIZE)
    bundles = TrustBundleCache(lambda now: store.bundle_signer(now=now), issuer_keys, settings.issuer,
                               clock=clock)
    return VerificationService(
        db=db, trust=IssuerTrust.of(settings.issuer, issuer_keys),
        card_keys=card_keys if isinstance(card_keys, CardKeys) else None, profiles=profiles,
        cipher=cipher if isinstance(cipher, PiiCipher) else None, clock=clock,
        list_secret=store.secret(LIST_SECRET)[1], bundles=bundles,
        offline_max_age=timedelta(days=settings.offline_checkin_max_days), zone=settings.zone)
