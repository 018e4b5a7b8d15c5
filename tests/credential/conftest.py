"""Shared fixtures: a fixed clock, software signers, a signed bundle and a verifier over it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from cardsvc.credential import (
    Algorithm,
    CredentialClaims,
    IssuerKey,
    KeyState,
    OfflineVerifier,
    SoftwareSigner,
    TrustAnchor,
    TrustBundle,
    build_trust_bundle,
    issue_credential,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ISSUER = "SZGH"
REVOKED = ("202600000007", "0000123", "9999999999999999")


def make_claims(card_number: str = "202600012345", **changes: object) -> CredentialClaims:
    fields: dict[str, object] = {
        "issuer": ISSUER, "card_number": card_number, "issued_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=365), "profile": "n424", "key_version": 1,
    }
    fields.update(changes)
    return CredentialClaims(**fields)  # type: ignore[arg-type]


def issuer_key(signer: SoftwareSigner, **changes: object) -> IssuerKey:
    fields: dict[str, object] = {
        "kid": signer.kid, "alg": signer.alg, "public_key": signer.public_key_bytes(),
        "state": KeyState.active, "not_before": NOW - timedelta(days=30), "not_after": None,
    }
    fields.update(changes)
    return IssuerKey(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def signer() -> SoftwareSigner:
    return SoftwareSigner.generate(Algorithm.eddsa, kid=b"\x11")


@pytest.fixture(scope="session")
def es256_signer() -> SoftwareSigner:
    return SoftwareSigner.generate(Algorithm.es256, kid=b"\x22")


@pytest.fixture(scope="session")
def bundle_signer() -> SoftwareSigner:
    return SoftwareSigner.generate(Algorithm.eddsa, kid=b"\xb1")


@pytest.fixture(scope="session")
def anchor(bundle_signer: SoftwareSigner) -> TrustAnchor:
    return TrustAnchor(bundle_signer.kid, bundle_signer.alg, bundle_signer.public_key_bytes())


@pytest.fixture(scope="session")
def bundle_bytes(signer: SoftwareSigner, es256_signer: SoftwareSigner,
                 bundle_signer: SoftwareSigner) -> bytes:
    keys = [issuer_key(signer), issuer_key(es256_signer)]
    return build_trust_bundle(bundle_signer, keys, REVOKED, 7, NOW - timedelta(hours=1),
                              NOW + timedelta(days=7), issuer=ISSUER)


@pytest.fixture(scope="session")
def bundle(bundle_bytes: bytes, anchor: TrustAnchor) -> TrustBundle:
    return TrustBundle.load(bundle_bytes, anchor)


@pytest.fixture
def verifier(bundle: TrustBundle) -> OfflineVerifier:
    return OfflineVerifier(bundle, clock=lambda: NOW)


@pytest.fixture
def credential(signer: SoftwareSigner) -> bytes:
    return issue_credential(signer, make_claims())


BundleFactory = Callable[..., TrustBundle]


@pytest.fixture
def make_bundle(bundle_signer: SoftwareSigner, anchor: TrustAnchor) -> BundleFactory:
    def build(keys: list[IssuerKey], revoked: tuple[str, ...] = (), **times: datetime) -> TrustBundle:
        issued = times.get("issued_at", NOW - timedelta(hours=1))
        expires = times.get("expires_at", NOW + timedelta(days=7))
        raw = build_trust_bundle(bundle_signer, keys, revoked, 1, issued, expires, issuer=ISSUER)
        return TrustBundle.load(raw, anchor)

    return build
