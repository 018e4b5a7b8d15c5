"""``GET /v1/trust-bundle``: the signed bundle for offline verifiers, rebuilt only when it changes.

The bundle carries the issuer keys and the card numbers that must not verify (revoked, lost,
suspended). It is rebuilt when that list changes or half its lifetime has passed; between rebuilds
the same bytes are served, so the ETag (a hash of the bytes) is stable and ``If-None-Match`` works.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cardsvc.credential.bundle import build_trust_bundle
from cardsvc.credential.keys import IssuerKey, Signer
from cardsvc.verification.tokens import Clock, utc_now

DEFAULT_VALIDITY = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class SignedBundle:
    raw: bytes
    etag: str
    built_at: datetime
    inputs: bytes


class TrustBundleCache:
    """Builds and caches the bundle; thread-safe (handlers call it from worker threads)."""

    def __init__(self, signer: Callable[[datetime], Signer], issuer_keys: Sequence[IssuerKey],
                 issuer: str | None, *, validity: timedelta = DEFAULT_VALIDITY,
                 clock: Clock = utc_now) -> None:
        self._signer = signer
        self._keys = tuple(issuer_keys)
        self._issuer = issuer
        self._validity = validity
        self._clock = clock
        self._lock = threading.Lock()
        self._current: SignedBundle | None = None

    def get(self, revoked: Sequence[str]) -> SignedBundle:
        inputs = hashlib.sha256("\n".join(sorted(revoked)).encode()).digest()
        now = self._clock()
        with self._lock:
            current = self._current
            if current is None or current.inputs != inputs or now - current.built_at >= self._validity / 2:
                current = self._build(revoked, inputs, now)
                self._current = current
            return current

    def _build(self, revoked: Sequence[str], inputs: bytes, now: datetime) -> SignedBundle:
        now = now.replace(microsecond=0)
        raw = build_trust_bundle(self._signer(now), self._keys, revoked, int(now.timestamp()), now,
                                 now + self._validity, issuer=self._issuer)
        etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
        return SignedBundle(raw, etag, now, inputs)
