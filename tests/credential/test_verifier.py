"""The offline verifier's checklist: one happy path and a negative test for every check."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cardsvc.credential import (
    Algorithm,
    KeyState,
    OfflineVerifier,
    SoftwareSigner,
    TrustAnchor,
    TrustBundle,
    VerificationStatus,
    issue_credential,
    to_qr_text,
)
from cardsvc.credential.base45 import b45encode
from cardsvc.credential.token import check_validity
from cardsvc.credential.verifier import CHECKS
from cardsvc.errors import BundleError, ConfigError
from tests.support.credentials import ISSUER, NOW, REVOKED, issuer_key, make_claims

from .conftest import BundleFactory


def _nok(verifier: OfflineVerifier, credential: str | bytes, reason: str) -> None:
    result = verifier.verify(credential)
    assert result.status is VerificationStatus.nok
    assert result.reason == reason
    assert result.checks[-1].name and not result.checks[-1].passed
    assert all(c.passed for c in result.checks[:-1])


def test_valid_credential_is_ok_with_every_check(verifier: OfflineVerifier, credential: bytes) -> None:
    result = verifier.verify(to_qr_text(credential))
    assert result.status is VerificationStatus.ok and result.reason is None
    assert result.card_number == "202600012345"
    assert result.claims == make_claims()
    assert [c.name for c in result.checks] == list(CHECKS)
    assert [c.number for c in result.checks] == list(range(1, 14))
    assert all(c.passed for c in result.checks)


def test_chip_bytes_skip_the_text_checks(verifier: OfflineVerifier, credential: bytes) -> None:
    result = verifier.verify(credential)
    assert result.status is VerificationStatus.ok
    assert result.checks[0].name == "cose_structure"


def test_es256_credential_is_ok(verifier: OfflineVerifier, es256_signer: SoftwareSigner) -> None:
    result = verifier.verify(to_qr_text(issue_credential(es256_signer, make_claims())))
    assert result.status is VerificationStatus.ok


@pytest.mark.parametrize("text", ["UC2:ABC", "uc1:ABC", "", "HC1:NCFOXN%TS3DH"])
def test_wrong_prefix(verifier: OfflineVerifier, text: str) -> None:
    _nok(verifier, text, "prefix")


def test_bad_base45(verifier: OfflineVerifier, credential: bytes) -> None:
    _nok(verifier, to_qr_text(credential)[:-1] + "a", "base45")
    _nok(verifier, to_qr_text(credential) + "A", "base45")  # dangling single character


def test_truncated(verifier: OfflineVerifier, credential: bytes) -> None:
    for cut in (1, 10, 64, len(credential) - 1):
        result = verifier.verify(to_qr_text(credential[:cut]))
        assert result.status is VerificationStatus.nok
        assert result.reason in {"cbor", "cose_structure"}


def test_trailing_bytes(verifier: OfflineVerifier, signer: SoftwareSigner, credential: bytes) -> None:
    assert len(credential) < 128
    _nok(verifier, "UC1:" + b45encode(credential + b"\x00"), "trailing_bytes")
    full = issue_credential(signer, make_claims("9" * 16))
    assert len(full) == 128
    _nok(verifier, "UC1:" + b45encode(full + b"\x00"), "too_large")


def test_not_cose_sign1(verifier: OfflineVerifier) -> None:
    _nok(verifier, "UC1:" + b45encode(b"\xd1\x84\x40\xa0\x40\x40"), "cose_structure")  # tag 17
    _nok(verifier, "UC1:" + b45encode(b"\x84\x40\xa0\x40\x40"), "cose_structure")  # untagged


def test_unknown_kid(verifier: OfflineVerifier) -> None:
    stranger = SoftwareSigner.generate(kid=b"\x99")
    _nok(verifier, issue_credential(stranger, make_claims()), "unknown_kid")


def test_kid_is_only_a_hint(verifier: OfflineVerifier, signer: SoftwareSigner) -> None:
    impostor = SoftwareSigner.generate(kid=signer.kid)  # right kid, wrong private key
    result = verifier.verify(issue_credential(impostor, make_claims()))
    assert result.reason == "signature" and result.claims is None


def test_algorithm_mismatch(verifier: OfflineVerifier, signer: SoftwareSigner,
                            es256_signer: SoftwareSigner) -> None:
    # header says ES256 under the kid of the EdDSA key: the key's pinned algorithm wins
    liar = SoftwareSigner(signer.kid, Algorithm.es256, es256_signer.private_key)
    _nok(verifier, issue_credential(liar, make_claims()), "algorithm_mismatch")


def test_bad_signature(verifier: OfflineVerifier, credential: bytes) -> None:
    tampered = credential[:-1] + bytes((credential[-1] ^ 0x80,))
    result = verifier.verify(tampered)
    assert (result.status, result.reason, result.claims) == (VerificationStatus.nok, "signature", None)
    assert result.card_number == "202600012345"  # parsed, untrusted: for the audit trail


def test_tampered_claims(verifier: OfflineVerifier, credential: bytes) -> None:
    at = credential.index(b"202600012345")
    tampered = credential[:at] + b"202600012346" + credential[at + 12 :]
    _nok(verifier, tampered, "signature")


def test_expired(verifier: OfflineVerifier, signer: SoftwareSigner) -> None:
    claims = make_claims(issued_at=NOW - timedelta(days=10), expires_at=NOW)
    _nok(verifier, issue_credential(signer, claims), "expired")


def test_not_yet_valid(verifier: OfflineVerifier, signer: SoftwareSigner) -> None:
    claims = make_claims(issued_at=NOW + timedelta(minutes=5), expires_at=NOW + timedelta(days=5))
    _nok(verifier, issue_credential(signer, claims), "not_yet_valid")


@pytest.mark.parametrize("card_number", REVOKED)
def test_revoked_card(verifier: OfflineVerifier, signer: SoftwareSigner, card_number: str) -> None:
    result = verifier.verify(issue_credential(signer, make_claims(card_number)))
    assert (result.status, result.reason) == (VerificationStatus.nok, "revoked")
    assert result.claims is not None  # signature was good: the claims are trusted


def test_revocation_keeps_leading_zeros(verifier: OfflineVerifier, signer: SoftwareSigner) -> None:
    assert "0000123" in REVOKED
    for number in ("123", "00123", "00001230"):
        assert verifier.verify(issue_credential(signer, make_claims(number))).status == "ok"


def test_retired_key_used_after_cutoff(signer: SoftwareSigner, make_bundle: BundleFactory) -> None:
    retired = issuer_key(signer, state=KeyState.retired, not_after=NOW - timedelta(days=3))
    verifier = OfflineVerifier(make_bundle([retired]), clock=lambda: NOW)
    after = make_claims(issued_at=NOW - timedelta(days=1))
    before = make_claims(issued_at=NOW - timedelta(days=5))
    _nok(verifier, issue_credential(signer, after), "key_cutoff")
    assert verifier.verify(issue_credential(signer, before)).status is VerificationStatus.ok


def test_key_not_yet_valid_for_signing(signer: SoftwareSigner, make_bundle: BundleFactory) -> None:
    early = issuer_key(signer, not_before=NOW)
    verifier = OfflineVerifier(make_bundle([early]), clock=lambda: NOW)
    _nok(verifier, issue_credential(signer, make_claims()), "key_window")


def test_revoked_key_verifies_nothing(signer: SoftwareSigner, make_bundle: BundleFactory) -> None:
    revoked = issuer_key(signer, state=KeyState.revoked)
    verifier = OfflineVerifier(make_bundle([revoked]), clock=lambda: NOW)
    _nok(verifier, issue_credential(signer, make_claims()), "key_revoked")


def test_other_issuer(verifier: OfflineVerifier, signer: SoftwareSigner) -> None:
    _nok(verifier, issue_credential(signer, make_claims(issuer="OTHER")), "issuer")


def test_stale_bundle_gives_check_never_ok(bundle: TrustBundle, credential: bytes) -> None:
    verifier = OfflineVerifier(bundle, clock=lambda: bundle.expires_at)
    result = verifier.verify(to_qr_text(credential))
    assert (result.status, result.reason) == (VerificationStatus.check, "bundle_stale")
    assert [c.name for c in result.checks if not c.passed] == ["bundle_freshness"]
    assert result.claims == make_claims()


def test_bundle_from_the_future_is_stale(bundle: TrustBundle, credential: bytes) -> None:
    verifier = OfflineVerifier(bundle, clock=lambda: bundle.issued_at - timedelta(seconds=1))
    assert verifier.verify(credential).status is VerificationStatus.check


def test_stale_bundle_does_not_hide_a_bad_credential(bundle: TrustBundle, credential: bytes) -> None:
    verifier = OfflineVerifier(bundle, clock=lambda: bundle.expires_at + timedelta(days=1))
    result = verifier.verify(credential[:-1] + bytes((credential[-1] ^ 1,)))
    assert (result.status, result.reason) == (VerificationStatus.nok, "signature")
    assert not next(c for c in result.checks if c.name == "bundle_freshness").passed


def test_tampered_bundle_gives_check(bundle_bytes: bytes, anchor: TrustAnchor, credential: bytes) -> None:
    at = bundle_bytes.index(ISSUER.encode())
    tampered = bundle_bytes[:at] + b"X" + bundle_bytes[at + 1 :]
    with pytest.raises(BundleError) as info:
        TrustBundle.load(tampered, anchor)
    assert info.value.reason == "bundle_signature"
    result = OfflineVerifier.from_bundle_bytes(tampered, anchor, clock=lambda: NOW).verify(credential)
    assert (result.status, result.reason) == (VerificationStatus.check, "bundle_signature")
    assert result.checks[-1].name == "bundle_signature" and not result.checks[-1].passed
    assert result.claims is None


def test_bundle_signed_by_another_key_is_refused(bundle_bytes: bytes) -> None:
    other = SoftwareSigner.generate(kid=b"\xb1")
    with pytest.raises(BundleError) as info:
        TrustBundle.load(bundle_bytes, TrustAnchor(other.kid, other.alg, other.public_key_bytes()))
    assert info.value.reason == "bundle_signature"


def test_bundle_anchor_kid_mismatch(bundle_bytes: bytes, anchor: TrustAnchor) -> None:
    moved = TrustAnchor(b"\x01", anchor.alg, anchor.public_key)
    with pytest.raises(BundleError, match="unknown key"):
        TrustBundle.load(bundle_bytes, [moved])


def test_malformed_credential_with_unverifiable_bundle_is_still_nok(anchor: TrustAnchor) -> None:
    verifier = OfflineVerifier.from_bundle_bytes(b"junk", anchor, clock=lambda: NOW)
    assert verifier.verify("XX").status is VerificationStatus.nok


def test_verifier_needs_a_bundle_or_its_error() -> None:
    with pytest.raises(ValueError, match="bundle"):
        OfflineVerifier(None)


def test_small_clock_drift_is_absorbed_only_for_iat(signer: SoftwareSigner, bundle: TrustBundle) -> None:
    """A partner device whose clock runs a minute behind the issuing station still accepts a card
    issued just now; expiry gets no leeway; ``leeway=0`` restores the strict check."""
    fresh = issue_credential(signer, make_claims(issued_at=NOW + timedelta(minutes=1)))
    assert OfflineVerifier(bundle, clock=lambda: NOW).verify(fresh).status is VerificationStatus.ok
    strict = OfflineVerifier(bundle, clock=lambda: NOW, leeway=timedelta(0))
    _nok(strict, fresh, "not_yet_valid")
    ending = issue_credential(signer, make_claims(issued_at=NOW - timedelta(days=1), expires_at=NOW))
    _nok(OfflineVerifier(bundle, clock=lambda: NOW), ending, "expired")


def test_a_naive_clock_is_a_typed_error(bundle: TrustBundle, credential: bytes) -> None:
    """Regression: a clock returning a naive datetime made the verifier raise TypeError."""
    verifier = OfflineVerifier(bundle, clock=lambda: NOW.replace(tzinfo=None))
    with pytest.raises(ConfigError, match="naive"):
        verifier.verify(credential)
    claims = make_claims()
    with pytest.raises(ConfigError):
        check_validity(claims, NOW.replace(tzinfo=None))
