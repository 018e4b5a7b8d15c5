"""Shared fixtures: software signers, a signed bundle and a verifier over it, at the fixed clock
(the builders and constants are tests/support/credentials.py, shared with tests/web/offline)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from cardsvc.credential import (
    Algorithm,
    IssuerKey,
    OfflineVerifier,
    SoftwareSigner,
    TrustAnchor,
    TrustBundle,
    issue_credential,
)
from tests.support.credentials import (
    BUNDLE_KID,
    ES_KID,
    NOW,
    anchor_of,
    issuer_key,
    make_claims,
    new_signer,
    signed_bundle,
)


@pytest.fixture(scope="session")
def signer() -> SoftwareSigner:
    return new_signer()


@pytest.fixture(scope="session")
def es256_signer() -> SoftwareSigner:
    return new_signer(Algorithm.es256, ES_KID)


@pytest.fixture(scope="session")
def bundle_signer() -> SoftwareSigner:
    return new_signer(kid=BUNDLE_KID)


@pytest.fixture(scope="session")
def anchor(bundle_signer: SoftwareSigner) -> TrustAnchor:
    return anchor_of(bundle_signer)


@pytest.fixture(scope="session")
def bundle_bytes(signer: SoftwareSigner, es256_signer: SoftwareSigner,
                 bundle_signer: SoftwareSigner) -> bytes:
    return signed_bundle(bundle_signer, [issuer_key(signer), issuer_key(es256_signer)])


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
        raw = signed_bundle(bundle_signer, keys, revoked=revoked, sequence=1, **times)
        return TrustBundle.load(raw, anchor)

    return build
