"""Credential test material shared by tests/credential (fixtures) and tests/web/offline (the
Python-vs-browser verifier comparisons): one fixed clock, claims, issuer key records, trust anchors
and signed trust bundles, so both suites test the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cardsvc.credential import (
    Algorithm,
    CredentialClaims,
    IssuerKey,
    KeyState,
    SoftwareSigner,
    TrustAnchor,
    build_trust_bundle,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ISSUER = "SZGH"
REVOKED = ("202600000007", "0000123", "9999999999999999")
# Key ids of the usual signers: the EdDSA and ES256 issuers and the bundle signer.
ED_KID, ES_KID, BUNDLE_KID = b"\x11", b"\x22", b"\xb1"


def make_claims(card_number: str = "202600012345", **changes: Any) -> CredentialClaims:
    """Claims of a card issued yesterday by ``ISSUER``, valid a year; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "issuer": ISSUER, "card_number": card_number, "issued_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=365), "profile": "n424", "key_version": 1,
    }
    return CredentialClaims(**(fields | changes))


def new_signer(alg: Algorithm = Algorithm.eddsa, kid: bytes = ED_KID) -> SoftwareSigner:
    return SoftwareSigner.generate(alg, kid=kid)


def issuer_key(signer: SoftwareSigner, **changes: Any) -> IssuerKey:
    """The bundle's record of ``signer``: active since 30 days, no end; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "kid": signer.kid, "alg": signer.alg, "public_key": signer.public_key_bytes(),
        "state": KeyState.active, "not_before": NOW - timedelta(days=30), "not_after": None,
    }
    return IssuerKey(**(fields | changes))


def anchor_of(signer: SoftwareSigner) -> TrustAnchor:
    """The trust anchor a verifier holds for bundles signed by ``signer``."""
    return TrustAnchor(signer.kid, signer.alg, signer.public_key_bytes())


def signed_bundle(signer: SoftwareSigner, keys: Sequence[IssuerKey], *,
                  revoked: Sequence[str] = REVOKED, sequence: int = 7,
                  issued_at: datetime = NOW - timedelta(hours=1),
                  expires_at: datetime = NOW + timedelta(days=7), issuer: str | None = ISSUER) -> bytes:
    """A trust bundle's bytes: issued an hour ago, valid a week, revoking ``REVOKED`` by default."""
    return build_trust_bundle(signer, keys, revoked, sequence, issued_at, expires_at, issuer=issuer)
