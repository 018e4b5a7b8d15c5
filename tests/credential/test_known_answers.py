"""Known-answer tests: RFC 8032 Ed25519 vector, RFC 9052 Sig_structure, and the pinned v1 layout."""

from __future__ import annotations

from datetime import UTC, datetime

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import CoseMessage

from cardsvc.credential import (
    Algorithm,
    CredentialClaims,
    SoftwareSigner,
    issue_credential,
    parse_credential,
    to_qr_text,
)
from cardsvc.credential.cose import sig_structure
from cardsvc.credential.keys import signature_check, verify_signature
from cardsvc.errors import CredentialVerificationError

# RFC 8032 §7.1, TEST 1 (empty message).
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25"
    "bf5f0595bbe24655141438e7a100b"
)

# Our credential format v1, pinned: RFC 8032 TEST 1 key, kid 01, the claims below. Ed25519 is
# deterministic, so any change to the encoding shows up here (and must bump the version).
GOLDEN_V1 = bytes.fromhex(
    "d28446a20127044101a05832a50164535a4748041a7c245f00061a6955b9000750323032363030303132333435363738"
    "393a000100008301646e343234015840a6b40ac70ccfa9545c4e53bf830c9d6f365265cec1baca6ce5411fa37044183a"
    "59b35c48be845d37d4a426a72b9a216315c39952b81b8d783276d777374edc00"
)
GOLDEN_CLAIMS = CredentialClaims("SZGH", "2026000123456789", datetime(2026, 1, 1, tzinfo=UTC),
                                 datetime(2036, 1, 1, tzinfo=UTC), "n424", 1)


@pytest.fixture
def rfc_signer() -> SoftwareSigner:
    return SoftwareSigner(b"\x01", Algorithm.eddsa,
                          ed25519.Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))


def test_rfc8032_test1(rfc_signer: SoftwareSigner) -> None:
    assert rfc_signer.public_key_bytes() == RFC8032_PUBLIC
    assert rfc_signer.sign(b"") == RFC8032_SIGNATURE
    check = signature_check(Algorithm.eddsa, ed25519.Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC))
    verify_signature(check, RFC8032_SIGNATURE, b"")
    with pytest.raises(CredentialVerificationError):
        verify_signature(check, RFC8032_SIGNATURE[:-1] + b"\x0a", b"")


def test_sig_structure_matches_an_independent_encoding() -> None:
    # RFC 9052 §4.4: ["Signature1", body_protected, external_aad, payload]
    for protected, payload in ((b"\xa1\x01\x27", b"x" * 23), (b"", b"y" * 300), (b"\xa0", b"")):
        assert sig_structure(protected, payload) == cbor2.dumps(["Signature1", protected, b"", payload])


def test_golden_credential_v1(rfc_signer: SoftwareSigner) -> None:
    assert issue_credential(rfc_signer, GOLDEN_CLAIMS) == GOLDEN_V1
    assert len(GOLDEN_V1) == 128
    assert parse_credential(GOLDEN_V1).claims == GOLDEN_CLAIMS
    message = CoseMessage.decode(GOLDEN_V1)
    message.key = OKPKey(crv=Ed25519, x=RFC8032_PUBLIC)
    assert message.verify_signature()
    assert to_qr_text(GOLDEN_V1).startswith("UC1:RRQ$-8P609O0B90X6BV%KXUCQIBV49")
