"""The cryptographic checks of the three ways to verify — pure functions over bytes and keys.

* :func:`check_credential` — the credential checklist of :mod:`cardsvc.credential.verifier` (steps
  3-4 and 7-11, 13) against the server's issuer keys; revocation (step 12) is replaced by the live
  card status, which is fresher than any bundle.
* :class:`SunChecker` — decrypt PICCData with the system-wide K_SDMMetaRead of each master-key
  version (newest first; every version that yields tag C7 is a candidate), then, once the card is
  known, the SDMMAC with its diversified K_SDMFileRead.
* :func:`check_internal_auth` — an FMCOS INTERNAL AUTHENTICATE cryptogram over our challenge.

All raise (fail closed): ``MalformedCredential`` for input not of our form,
``CredentialVerificationError`` / ``CardIntegrityError`` for input that does not verify.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from cardsvc.cardcrypto import fmcos as fc
from cardsvc.cardcrypto import sun
from cardsvc.credential.claims import CredentialClaims
from cardsvc.credential.token import (
    check_issuer,
    check_signed_by,
    check_validity,
    parse_credential,
)
from cardsvc.errors import CardIntegrityError, CredentialVerificationError, KeyStoreError
from cardsvc.profiles import Profile
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.profiles.ntag424 import Ntag424Config, SlotDeriver
from cardsvc.verification.keys import CardKeys, IssuerTrust


def check_credential(trust: IssuerTrust, raw: bytes, now: datetime) -> CredentialClaims:
    """The credential checklist; returns the claims once everything passed."""
    parsed = parse_credential(raw)
    check_signed_by(parsed, trust.key(parsed.sign1.kid))
    check_validity(parsed.claims, now)
    check_issuer(parsed.claims, trust.issuer)
    return parsed.claims


def same_credential(presented: bytes, stored: bytes | None) -> None:
    """The presented credential must be the card's current one (a reissue supersedes the old)."""
    if stored is None or not hmac.compare_digest(presented, stored):
        raise CredentialVerificationError("not the card's current credential", reason="credential_superseded")


@dataclass(frozen=True, slots=True, eq=False)
class SunChecker:
    """SUN verification for one NTAG 424 DNA profile with the server's master keys.

    Every key is prepared at :meth:`build`: the meta-read key of each version as a
    :class:`~cardsvc.cardcrypto.sun.PiccDecryptor`, the file-read master of each version as a
    :class:`~cardsvc.profiles.ntag424.SlotDeriver`; a tap is then a few AES block operations and
    two CMACs. Shared by every request thread (the prepared keys keep a context per thread).
    """

    config: Ntag424Config
    keys: CardKeys
    meta_keys: tuple[tuple[int, sun.PiccDecryptor], ...]
    file_read: Mapping[int, SlotDeriver]

    @classmethod
    def build(cls, profile: Profile, keys: CardKeys) -> SunChecker:
        config = profile.config
        if not isinstance(config, Ntag424Config):
            raise TypeError(f"profile {profile.name} is not an NTAG 424 DNA profile")
        meta, file_read = [], {}
        si = keys.system_identifier
        for version in keys.versions():
            masters = keys.master(version)
            if config.slot(config.sun.meta_read_key).master in masters:
                meta_key = config.card_key(config.sun.meta_read_key, masters, uid=b"", system_identifier=si)
                meta.append((version, sun.PiccDecryptor(meta_key)))
            if config.slot(config.sun.file_read_key).master in masters:
                file_read[version] = config.card_key_deriver(config.sun.file_read_key, masters,
                                                             system_identifier=si)
        return cls(config, keys, tuple(meta), MappingProxyType(file_read))

    def parse(self, url: str) -> sun.SunMessage:
        return sun.parse_sun_url(url, picc_param=self.config.sun.picc_param,
                                 mac_param=self.config.sun.mac_param)

    def message_from_params(self, picc_hex: str, mac_hex: str) -> sun.SunMessage:
        """The message of a tap whose query string is already split: the values of the profile's
        PICCData (``p``) and SDMMAC (``m``) parameters, without building and parsing a URL again.
        Equals :meth:`parse` of a URL with those two values; raises ``MalformedCredential``
        (``sun_malformed``) when either is not 32 resp. 16 hex digits."""
        return sun.sun_message(picc_hex, mac_hex, picc_param=self.config.sun.picc_param,
                               mac_param=self.config.sun.mac_param)

    def reveal(self, message: sun.SunMessage) -> list[tuple[int, sun.SunReading]]:
        """UID and counter under every key version whose meta-read key opens PICCData to tag C7.

        A wrong key also yields C7 once in 256: the caller tries each candidate (card lookup, then
        the MAC) before refusing. Raises CardIntegrityError when no version opens it."""
        found: list[tuple[int, sun.SunReading]] = []
        for version, meta in self.meta_keys:
            try:
                found.append((version, meta.decrypt(message.picc_data)))
            except CardIntegrityError:
                continue
        if not found:
            raise CardIntegrityError("PICCData opens with none of our meta-read keys")
        return found

    def check_mac(self, message: sun.SunMessage, reading: sun.SunReading, key_version: int) -> None:
        deriver = self.file_read.get(key_version)
        if deriver is None:  # raises KeyStoreError: no such version, or it has no file-read master
            self.config.card_key(self.config.sun.file_read_key, self.keys.master(key_version),
                                 uid=reading.uid, system_identifier=self.keys.system_identifier)
            raise KeyStoreError(f"no SDM file-read master key of version {key_version}")
        expected = sun.sdm_mac(deriver.derive(reading.uid), reading.uid, reading.counter, message.mac_input)
        if not hmac.compare_digest(expected, message.mac):
            raise CardIntegrityError("SUN MAC does not match")

def check_internal_auth(profile: Profile, keys: CardKeys, *, key_version: int, uid: bytes,
                        challenge: bytes, cryptogram: bytes) -> None:
    """An FMCOS card's INTERNAL AUTHENTICATE answer over the first block of our challenge."""
    config = profile.config
    if not isinstance(config, FmcosConfig):
        raise CardIntegrityError(f"profile {profile.name} has no internal authentication")
    slot = config.key("internal_auth")
    master = keys.master(key_version).get(slot.master_role)
    if master is None:
        raise CardIntegrityError(f"no master key {slot.master_role} v{key_version}")
    cs = fc.suite(config.cipher_suite)
    key = slot.derive(master, uid=uid, aid=config.diversification_aid,
                      system_identifier=keys.system_identifier, cipher_suite=config.cipher_suite)
    fc.verify_internal_auth(cs, key, challenge[: cs.block_size], cryptogram)


def challenge_block(profiles: Mapping[str, Profile], profile_name: str, challenge: bytes) -> bytes:
    """The part of a challenge a card of ``profile_name`` signs (one cipher block for FMCOS)."""
    config = profiles[profile_name].config if profile_name in profiles else None
    if isinstance(config, FmcosConfig):
        return challenge[: fc.suite(config.cipher_suite).block_size]
    return challenge
