"""Signed card credentials (CWT in COSE_Sign1), QR text codec, key stores, trust bundle, offline verifier.

Public surface (see docs/credentials.md):

* ``CredentialClaims``, ``issue_credential(signer, claims) -> bytes`` (≤ 128 bytes)
* ``to_qr_text`` / ``from_qr_text`` (``UC1:`` + base45), ``render_qr_png`` / ``render_qr_svg``
* ``parse_credential`` and the ``check_*`` steps the server-side verifier reuses
* ``KeyStore`` protocol, ``open_key_store(settings)``, ``Signer``, ``IssuerKey``, ``KeyState``
* ``build_trust_bundle``, ``TrustBundle.load(raw, anchors)``, ``TrustAnchor``
* ``OfflineVerifier(bundle, clock=...)`` → ``VerificationResult`` (``VerificationStatus``)
"""

from cardsvc.credential.bundle import TrustAnchor, TrustBundle, build_trust_bundle
from cardsvc.credential.claims import CredentialClaims
from cardsvc.credential.cose import Algorithm
from cardsvc.credential.keys import (
    IssuerKey,
    KeyState,
    SignatureCheck,
    Signer,
    SoftwareSigner,
    load_public_key,
    signature_check,
)
from cardsvc.credential.keystore import KeyStore, Pkcs11Config, open_key_store
from cardsvc.credential.qr import from_qr_text, render_qr_png, render_qr_svg, to_qr_text
from cardsvc.credential.token import (
    MAX_CREDENTIAL_SIZE,
    ParsedCredential,
    check_algorithm,
    check_issuer,
    check_key_state,
    check_signature,
    check_validity,
    issue_credential,
    parse_credential,
)
from cardsvc.credential.verifier import (
    CheckResult,
    OfflineVerifier,
    VerificationResult,
    VerificationStatus,
)

__all__ = [
    "MAX_CREDENTIAL_SIZE",
    "Algorithm",
    "CheckResult",
    "CredentialClaims",
    "IssuerKey",
    "KeyState",
    "KeyStore",
    "OfflineVerifier",
    "ParsedCredential",
    "Pkcs11Config",
    "SignatureCheck",
    "Signer",
    "SoftwareSigner",
    "TrustAnchor",
    "TrustBundle",
    "VerificationResult",
    "VerificationStatus",
    "build_trust_bundle",
    "check_algorithm",
    "check_issuer",
    "check_key_state",
    "check_signature",
    "check_validity",
    "from_qr_text",
    "issue_credential",
    "load_public_key",
    "open_key_store",
    "parse_credential",
    "render_qr_png",
    "render_qr_svg",
    "signature_check",
    "to_qr_text",
]
