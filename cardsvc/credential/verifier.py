"""The offline verifier: a numbered checklist over a credential and a verified trust bundle.

Checklist (fail closed; the first failing check decides, except freshness — see below):

 1 prefix            QR text starts with ``UC1:``
 2 base45            the rest is valid base45 (RFC 9285)
 3 cose_structure    one tagged COSE_Sign1, no trailing bytes, ≤ 128 bytes, alg in protected header
 4 claims            CWT claims of our form (iss, cti, iat, exp, cardsvc claim)
 5 bundle_signature  the trust bundle verified against the trust anchor
 6 bundle_freshness  the bundle is inside its validity window
 7 kid               the kid names a key in the bundle (a hint: the key record is what counts)
 8 algorithm         the header's alg is the key's pinned algorithm
 9 signature         the signature verifies
10 key_state         key not revoked; credential issued inside the key's window (retired cut-off)
11 validity          iat - leeway ≤ now < exp (leeway: 2 minutes by default, for clock drift)
12 revocation        the card number is not in the revocation list
13 issuer            iss matches the bundle's issuer (when the bundle names one)

Outcomes: ``ok`` only when every check passes. ``nok`` with the failing check's reason code.
``check`` (manual check) when the credential passes but the bundle is stale (6) or could not be
verified (5): a stale or unverifiable bundle never yields ``ok``. Bytes read from a chip skip
checks 1-2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cardsvc.credential.bundle import TrustAnchor, TrustBundle
from cardsvc.credential.claims import CredentialClaims
from cardsvc.credential.qr import from_qr_text
from cardsvc.credential.token import (
    ParsedCredential,
    check_issuer,
    check_signed_by,
    check_validity,
    parse_credential,
    require_aware,
)
from cardsvc.errors import BundleError, CredentialVerificationError, MalformedCredential

Clock = Callable[[], datetime]
DEFAULT_LEEWAY = timedelta(minutes=2)  # partner devices' clocks drift; see check_validity

CHECKS = (
    "prefix", "base45", "cose_structure", "claims", "bundle_signature", "bundle_freshness", "kid",
    "algorithm", "signature", "key_state", "validity", "revocation", "issuer",
)
_STEP = {name: number for number, name in enumerate(CHECKS, start=1)}
# reason code -> the check that produces it
_REASON_STEP = {
    "prefix": 1, "too_large": 3, "base45": 2, "cbor": 3, "trailing_bytes": 3, "cose_structure": 3,
    "claims": 4, "unknown_kid": 7, "algorithm_mismatch": 8, "signature": 9, "key_revoked": 10,
    "key_window": 10, "key_cutoff": 10, "not_yet_valid": 11, "expired": 11, "revoked": 12,
    "issuer": 13, "bundle_stale": 6,
}


class VerificationStatus(StrEnum):
    ok = "ok"
    nok = "nok"
    check = "check"


@dataclass(frozen=True, slots=True)
class CheckResult:
    number: int
    name: str
    passed: bool


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The outcome. ``card_number`` is set once the claims parse (untrusted when ``nok`` before
    the signature check); ``claims`` only once the signature verified."""

    status: VerificationStatus
    reason: str | None
    card_number: str | None
    claims: CredentialClaims | None
    checks: tuple[CheckResult, ...]


class OfflineVerifier:
    """Verify credentials against one loaded trust bundle, with an injected clock."""

    def __init__(self, bundle: TrustBundle | None, clock: Clock | None = None, *,
                 bundle_error: BundleError | None = None, leeway: timedelta = DEFAULT_LEEWAY) -> None:
        if bundle is None and bundle_error is None:
            raise ValueError("give a verified bundle or the error that prevented loading one")
        self._bundle = bundle
        self._bundle_error = bundle_error
        self._clock = clock or _utc_now
        self._leeway = leeway

    @classmethod
    def from_bundle_bytes(cls, raw: bytes, anchors: TrustAnchor | list[TrustAnchor],
                          clock: Clock | None = None) -> OfflineVerifier:
        """Load and verify a bundle; an unverifiable one gives a verifier that answers ``check``."""
        try:
            return cls(TrustBundle.load(raw, anchors), clock)
        except BundleError as exc:
            return cls(None, clock, bundle_error=exc)

    @property
    def bundle(self) -> TrustBundle | None:
        return self._bundle

    def verify(self, credential: str | bytes) -> VerificationResult:
        first = 1 if isinstance(credential, str) else 3
        try:
            raw = from_qr_text(credential) if isinstance(credential, str) else credential
            parsed = parse_credential(raw)
        except MalformedCredential as exc:
            return _result(VerificationStatus.nok, exc.reason, first, None, None)
        if self._bundle is None:
            reason = self._bundle_error.reason if self._bundle_error else "bundle_invalid"
            return _result(VerificationStatus.check, reason, first, parsed.claims.card_number, None)
        return self._verify_parsed(parsed, first)

    def _verify_parsed(self, parsed: ParsedCredential, first: int) -> VerificationResult:
        bundle = self._bundle
        assert bundle is not None  # noqa: S101 - checked by the caller
        now = require_aware(self._clock())
        stale = not bundle.is_fresh(now)
        claims = parsed.claims
        try:
            self._run_checks(bundle, parsed, now, self._leeway)
        except CredentialVerificationError as exc:
            trusted = claims if _REASON_STEP[exc.reason] > _STEP["signature"] else None
            return _result(VerificationStatus.nok, exc.reason, first, claims.card_number, trusted,
                           stale=stale)
        if stale:
            return _result(VerificationStatus.check, "bundle_stale", first, claims.card_number,
                           claims, stale=True)
        return VerificationResult(VerificationStatus.ok, None, claims.card_number, claims,
                                  _ALL_PASSED[first])

    @staticmethod
    def _run_checks(bundle: TrustBundle, parsed: ParsedCredential, now: datetime,
                    leeway: timedelta) -> None:
        """Checks 7-13, in order; the first failure raises ``CredentialVerificationError``."""
        check_signed_by(parsed, bundle.key(parsed.sign1.kid))
        check_validity(parsed.claims, now, leeway=leeway)
        if bundle.is_revoked(parsed.claims.card_number):
            raise CredentialVerificationError("card is revoked", reason="revoked")
        check_issuer(parsed.claims, bundle.issuer)


def _result(status: VerificationStatus, reason: str | None, first: int, card_number: str | None,
            claims: CredentialClaims | None, *, stale: bool = False) -> VerificationResult:
    return VerificationResult(status, reason, card_number, claims, _checks(first, reason, stale))


_CHECK_CACHE: dict[tuple[int, str | None, bool], tuple[CheckResult, ...]] = {}


def _checks(first: int, reason: str | None, stale: bool) -> tuple[CheckResult, ...]:
    """The checks run, as a shared immutable tuple built once per shape (the hot path allocates
    nothing here). A failing credential check ends the list; bundle problems do not."""
    key = (first, reason, stale)
    cached = _CHECK_CACHE.get(key)
    if cached is None:
        failed = _REASON_STEP.get(reason, 5) if reason is not None else None
        last = len(CHECKS) if failed in (None, 6) else failed
        cached = tuple(
            CheckResult(n, CHECKS[n - 1], n != failed and not (stale and n == 6))
            for n in range(first, last + 1)
        )
        _CHECK_CACHE[key] = cached
    return cached


_ALL_PASSED = {first: _checks(first, None, False) for first in (1, 3)}


def _utc_now() -> datetime:
    return datetime.now(UTC)
