"""The issuance-side verification of a written card: what a verifier will check, before ``verified``.

1. the read-back matches the journal row (card number, credential bytes, key version, chip UID);
2. the credential parses, its signature verifies with the issuer key it names, inside the key's
   window, and its claims are the card's (cti = card number, profile, key version);
3. the card proves it holds the production keys: a SUN URL (NTAG 424 DNA) whose PICCData and MAC
   verify with the diversified SDM keys and name this UID, or an INTERNAL AUTHENTICATE cryptogram
   (FMCOS) over a fresh challenge.

Every check raises (fails closed); nothing returns a bare bool. What the card shows wrong raises
``CardIntegrityError``; a key the host lacks raises ``KeyStoreError`` (the station's fault, not the
card's).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence

from cardsvc.cardcrypto import fmcos as fc
from cardsvc.cardcrypto import sun
from cardsvc.credential.keys import IssuerKey, load_public_key, signature_check
from cardsvc.credential.token import (
    check_signed_by,
    parse_credential,
)
from cardsvc.drivers.base import CardDriver, CardProof, CardReadout, MasterKeys
from cardsvc.errors import CardIntegrityError, CredentialVerificationError, KeyStoreError, MalformedCredential
from cardsvc.profiles import Profile
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.profiles.ntag424 import Ntag424Config
from cardsvc.transport.base import CardConnection

Rng = Callable[[int], bytes]


def check_readout(readout: CardReadout, *, card_number: str, credential: bytes, key_version: int,
                  uid: bytes) -> None:
    """Step 1: the card holds what the journal says it should."""
    if readout.card_number != card_number:
        raise CardIntegrityError(f"card holds number {readout.card_number}, journal says {card_number}")
    if not hmac.compare_digest(readout.credential, credential):
        raise CardIntegrityError(f"card {card_number}: credential read back differs from the one signed")
    if readout.key_version != key_version:
        raise CardIntegrityError(f"card {card_number}: key version {readout.key_version}, "
                                 f"expected {key_version}")
    if not hmac.compare_digest(readout.uid, uid):
        raise CardIntegrityError(f"card {card_number}: chip UID differs from the one bound")


def check_credential(credential: bytes, keys: Sequence[IssuerKey], *, card_number: str, profile: str,
                     key_version: int) -> None:
    """Step 2: the credential verifies with our issuer key and names this card."""
    parsed = parse_credential(credential)
    key = next((k for k in keys if k.kid == parsed.sign1.kid), None)
    entry = (key, signature_check(key.alg, load_public_key(key.alg, key.public_key))) if key else None
    check_signed_by(parsed, entry)
    claims = parsed.claims
    if (claims.card_number, claims.profile, claims.key_version) != (card_number, profile, key_version):
        raise CredentialVerificationError("credential claims do not name this card", reason="claims")


def check_card_proof(driver: CardDriver, conn: CardConnection, master_keys: MasterKeys, uid: bytes,
                     *, rng: Rng = os.urandom) -> None:
    """Step 3: a live proof with the production keys, checked by pure cardcrypto code."""
    config = driver.profile.config
    if isinstance(config, Ntag424Config):
        _check_sun(config, driver.prove(conn, b""), master_keys, uid)
    elif isinstance(config, FmcosConfig):
        cs = fc.suite(config.cipher_suite)
        proof = driver.prove(conn, rng(cs.block_size))
        _check_internal_auth(driver.profile, config, proof, master_keys, uid)
    else:
        raise CardIntegrityError(f"no card-proof check for profile {driver.profile.name}")


def _check_sun(config: Ntag424Config, proof: CardProof, keys: MasterKeys, uid: bytes) -> None:
    try:  # the URL comes from the card: a malformed one is the card's fault, not a credential error
        message = sun.parse_sun_url(proof.payload.decode("ascii", "replace"),
                                    picc_param=config.sun.picc_param, mac_param=config.sun.mac_param)
    except MalformedCredential as exc:
        raise CardIntegrityError(f"the card's SUN message is malformed: {exc.message}") from exc
    roles = {config.slot(n).master for n in (config.sun.meta_read_key, config.sun.file_read_key)}
    if missing := sorted(roles - keys.keys.keys()):
        raise KeyStoreError(f"no master key for {', '.join(missing)}")
    meta = config.card_key(config.sun.meta_read_key, keys.keys, uid=b"",
                           system_identifier=keys.system_identifier)

    def file_key(card_uid: bytes) -> bytes:
        return config.card_key(config.sun.file_read_key, keys.keys, uid=card_uid,
                               system_identifier=keys.system_identifier)

    try:
        reading = sun.verify_sun(message, meta_read_key=meta, file_read_key=file_key)
    except MalformedCredential as exc:
        raise CardIntegrityError(f"the card's SUN message is malformed: {exc.message}") from exc
    if not hmac.compare_digest(reading.uid, uid):
        raise CardIntegrityError("the SUN message names another chip")


def _check_internal_auth(profile: Profile, config: FmcosConfig, proof: CardProof, keys: MasterKeys,
                         uid: bytes) -> None:
    slot = config.key("internal_auth")
    master = keys.keys.get(slot.master_role)
    if master is None:
        raise KeyStoreError(f"profile {profile.name}: no master key for {slot.master_role}")
    key = slot.derive(master, uid=uid, aid=config.diversification_aid,
                      system_identifier=keys.system_identifier, cipher_suite=config.cipher_suite)
    fc.verify_internal_auth(fc.suite(config.cipher_suite), key, proof.challenge, proof.payload)
