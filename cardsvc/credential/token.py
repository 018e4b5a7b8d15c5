"""Issue and parse card credentials: a CWT in a tagged COSE_Sign1, at most 128 bytes.

The parse and check functions here are the reusable steps of the verification checklist; the
offline verifier and the server-side verifier both call them, in the order the checklist gives.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple, NoReturn

from cardsvc.credential._cbor import decode_exact, encode
from cardsvc.credential.claims import CredentialClaims, claims_from_map
from cardsvc.credential.cose import (
    Sign1,
    decode_sign1,
    encode_sign1,
    protected_header,
    sig_structure,
)
from cardsvc.credential.keys import (
    IssuerKey,
    KeyState,
    SignatureCheck,
    Signer,
    verify_signature,
)
from cardsvc.errors import ConfigError, CredentialVerificationError, MalformedCredential
from cardsvc.logging import get_logger

MAX_CREDENTIAL_SIZE = 128  # the NTAG 424 DNA protected file holds 128 bytes
_log = get_logger(__name__)


class ParsedCredential(NamedTuple):
    """A structurally valid credential; nothing about it is trusted yet (immutable record)."""

    sign1: Sign1
    claims: CredentialClaims


def issue_credential(signer: Signer, claims: CredentialClaims) -> bytes:
    """Sign ``claims``; the tagged COSE_Sign1 bytes. Raises if the result exceeds 128 bytes."""
    protected = protected_header(signer.alg, signer.kid)
    payload = encode(claims.to_cbor_map())
    signature = signer.sign(sig_structure(protected, payload))
    credential = encode_sign1(protected, payload, signature)
    if len(credential) > MAX_CREDENTIAL_SIZE:
        raise MalformedCredential(
            f"credential is {len(credential)} bytes, the card file holds {MAX_CREDENTIAL_SIZE}: "
            "shorten the issuer code, profile code or category codes",
            reason="too_large",
        )
    _log.info("issued credential for card %s with key %s (%d bytes)",
              claims.card_number, signer.kid.hex(), len(credential))
    return credential


def parse_credential(raw: bytes) -> ParsedCredential:
    """Checklist steps 3-4: COSE structure and CWT claims. Trusts nothing."""
    sign1 = decode_sign1(raw, max_size=MAX_CREDENTIAL_SIZE)
    claims = claims_from_map(decode_exact(sign1.payload, _bad_claims))
    return ParsedCredential(sign1, claims)


def check_signed_by(parsed: ParsedCredential, entry: tuple[IssuerKey, SignatureCheck] | None) -> None:
    """The key checks every verifier runs, in order: the kid named a key we trust (``entry``, looked
    up by the caller — the kid is only a hint), the algorithm pinned to that key, the signature, and
    the key's state and window at the credential's issue time."""
    if entry is None:
        _refuse("no trusted issuer key with this kid", "unknown_kid")
    key, check = entry
    check_algorithm(parsed, key)
    check_signature(parsed, check)
    check_key_state(parsed, key)


def check_algorithm(parsed: ParsedCredential, key: IssuerKey) -> None:
    """The header's ``alg`` must be the one pinned to the key (never chosen by the token)."""
    if parsed.sign1.alg != key.alg:
        _refuse("algorithm does not match the key's pinned algorithm", "algorithm_mismatch")


def check_signature(parsed: ParsedCredential, check: SignatureCheck) -> None:
    """``check`` comes from ``keys.signature_check(alg, public_key)``, built once per key."""
    verify_signature(check, parsed.sign1.signature, parsed.sign1.to_be_signed())


def check_key_state(parsed: ParsedCredential, key: IssuerKey) -> None:
    """A revoked key verifies nothing; a credential must be issued inside the key's window."""
    if key.state is KeyState.revoked:
        _refuse("the signing key is revoked", "key_revoked")
    issued_at = parsed.claims.issued_at
    if issued_at < key.not_before:
        _refuse("credential issued before the key's not-before", "key_window")
    if key.not_after is not None and issued_at >= key.not_after:
        _refuse("credential issued after the key's cut-off", "key_cutoff")


def check_validity(claims: CredentialClaims, now: datetime, *,
                   leeway: timedelta = timedelta(0)) -> None:
    """``iat - leeway <= now < exp``: the leeway absorbs a verifier clock running behind the
    issuing station's (a card read minutes after issuance); expiry gets none."""
    require_aware(now)
    if now + leeway < claims.issued_at:
        _refuse("credential not yet valid", "not_yet_valid")
    if now >= claims.expires_at:
        _refuse("credential expired", "expired")


def require_aware(now: datetime) -> datetime:
    """A naive clock reading would make every comparison raise ``TypeError``: refuse it by type."""
    if now.utcoffset() is None:
        raise ConfigError("the verifier clock returned a naive datetime; it must be timezone-aware")
    return now


def check_issuer(claims: CredentialClaims, issuer: str | None) -> None:
    if issuer is not None and claims.issuer != issuer:
        _refuse("credential issued by a different issuer", "issuer")


def _refuse(message: str, reason: str) -> NoReturn:
    raise CredentialVerificationError(message, reason=reason)


def _bad_claims(reason: str) -> NoReturn:
    raise MalformedCredential(f"CWT claims are not valid CBOR ({reason})", reason="claims")
