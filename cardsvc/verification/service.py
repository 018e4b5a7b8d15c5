"""The verification workflows: QR, phone tap (SUN), reader tap (challenge + card proof).

Each public method is a plain function of a session (run by :meth:`Database.run` in one
transaction): cryptography first, then the card by number or keyed UID hash, the replay guard
(SUN counter compare-and-set, single-use challenge), the live status rules of :mod:`.outcome`, and
one audit row in the same transaction. Input that is not a verification (malformed text, unknown
card, bad challenge) raises a typed error, rolls back, and records nothing.

QR and phone-tap verifications also come in two halves for the hot path: ``check_qr`` /
``check_sun`` only read (signature, MAC, card and member row; run in parallel outside any write
lock) and return a :class:`Pending`; :meth:`VerificationService.commit` does the writes (SUN
counter compare-and-set, audit row) in a group-committed batch. ``verify_qr`` = both in one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from sqlmodel import Session

from cardsvc.cardcrypto.sun import SunMessage, SunReading
from cardsvc.credential.qr import from_qr_text
from cardsvc.errors import (
    CardIntegrityError,
    Conflict,
    CredentialVerificationError,
    KeyStoreError,
    NotConfigured,
    NotFound,
)
from cardsvc.logging import get_logger
from cardsvc.profiles import Profile
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.cards import CardStatus
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.verification_models import Challenge
from cardsvc.verification.audit import AuditEvent
from cardsvc.verification.checks import (
    SunChecker,
    check_credential,
    check_internal_auth,
    same_credential,
)
from cardsvc.verification.db import Database
from cardsvc.verification.keys import CardKeys, IssuerTrust
from cardsvc.verification.outcome import LiveCard, Verdict, Verification, live_status
from cardsvc.verification.prepared import PreparedRead, PreparedWrite
from cardsvc.verification.store import record_event
from cardsvc.verification.tokens import Clock, utc_now
from cardsvc.verification.trustbundle import TrustBundleCache

log = get_logger(__name__)

# The hot reads on the DBAPI cursor (same statements as repo.card_with_member, a fraction of the CPU).
CARD_BY_NUMBER = PreparedRead(repo.CARD_BY_NUMBER)
CARD_BY_UID = PreparedRead(repo.CARD_BY_UID)
SUN_SEED = {dialect: PreparedWrite(statement) for dialect, statement in repo.SUN_SEED.items()}
SUN_ADVANCE = PreparedWrite(repo.SUN_ADVANCE)


def advance_sun_counter(session: Session, *, card_number: str, counter: int, now: datetime) -> bool:
    """``repo.advance_sun_counter`` (insert-if-absent, then the compare-and-set UPDATE … WHERE
    last < counter) with its two statements on the DBAPI cursor: one winner among replays."""
    params = {"card": card_number, "counter": counter, "now": now}
    SUN_SEED[session.connection().dialect.name].execute(session, **params)
    return SUN_ADVANCE.execute(session, **params) == 1

CHALLENGE_SIZE = 16
CHALLENGE_TTL = timedelta(seconds=60)
# Expired challenges are deleted as new ones are made (a few per create, oldest first), after a
# grace during which a late answer still gets ``challenge_expired`` rather than ``challenge_unknown``.
CHALLENGE_PURGE_AFTER = timedelta(minutes=10)
CHALLENGE_PURGE_BATCH = 8
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class CardAnswer:
    """What a reader-tap terminal sends: the chip UID, the card's proof and the credential it holds."""

    challenge: bytes
    uid: bytes
    kind: str  # "internal_auth" (payload = cryptogram) or "sun" (payload = the URL as read)
    payload: bytes
    credential: bytes | None = None  # read from the chip when the terminal can; else the stored one


@dataclass(frozen=True, slots=True)
class Pending:
    """A checked verification before its writes: the answer it will give, who asked, and for a
    phone tap the counter to compare-and-set (see :meth:`VerificationService.commit`)."""

    answer: Verification
    actor: str
    counter: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class VerificationService:
    """Everything the verification workflows need, injected (no globals)."""

    db: Database
    trust: IssuerTrust
    card_keys: CardKeys | None
    profiles: Mapping[str, Profile]
    cipher: PiiCipher | None = None
    clock: Clock = utc_now
    rng: Callable[[int], bytes] = os.urandom
    list_secret: bytes | None = field(default=None, repr=False)
    bundles: TrustBundleCache | None = None
    sun_checkers: dict[str, SunChecker] = field(default_factory=dict, repr=False)
    offline_max_age: timedelta = timedelta(days=7)  # how old a synced offline check-in may be
    zone: tzinfo = UTC  # local days (recuperation programme dates); setup passes Settings.zone

    def __post_init__(self) -> None:
        if self.card_keys is None:
            return
        for name, profile in self.profiles.items():
            if profile.family == "ntag424":
                self.sun_checkers[name] = SunChecker.build(profile, self.card_keys)

    # --- QR ------------------------------------------------------------------------------------

    def verify_qr(self, session: Session, *, actor: str, qr_text: str) -> Verification:
        return self.commit(session, self.check_qr(session, actor=actor, qr_text=qr_text))

    def check_qr(self, session: Session, *, actor: str, qr_text: str) -> Pending:
        """Everything of a QR verification but its write (reads only; may run outside the batch)."""
        raw = from_qr_text(qr_text)
        now = self.clock()
        try:
            claims = check_credential(self.trust, raw, now)
        except CredentialVerificationError as exc:
            return self._refusal("qr", actor, None, exc.reason, now)
        card = _card(session, claims.card_number)
        try:
            same_credential(raw, card.credential)
        except CredentialVerificationError as exc:
            return self._refusal("qr", actor, card.card_number, exc.reason, now)
        return self._answer("qr", actor, card, now)

    # --- SUN -----------------------------------------------------------------------------------

    def sun_checker(self) -> SunChecker:
        if not self.sun_checkers:
            log.warning("no NTAG 424 DNA master keys loaded: SUN verification is unavailable")
            raise NotConfigured
        return next(iter(self.sun_checkers.values()))

    def verify_sun(self, session: Session, *, actor: str, url: str) -> Verification:
        return self.commit(session, self.check_sun(session, actor=actor, url=url))

    def check_sun(self, session: Session, *, actor: str, url: str) -> Pending:
        """A phone tap up to (not including) its counter compare-and-set and audit row."""
        checker = self.sun_checker()
        return self._sun(session, checker, checker.parse(url), actor, "sun", expected_uid=None)

    def check_sun_params(self, session: Session, *, actor: str, picc: str, mac: str) -> Pending:
        """:meth:`check_sun` of a tap whose query string is already split (the API routes)."""
        checker = self.sun_checker()
        return self._sun(session, checker, checker.message_from_params(picc, mac), actor, "sun",
                         expected_uid=None)

    def _sun(self, session: Session, checker: SunChecker, message: SunMessage, actor: str, method: str,
             *, expected_uid: bytes | None) -> Pending:
        """Every (key version, card) whose meta-read key opened PICCData is tried before a refusal:
        a wrong version decrypts to tag C7 once in 256 and must not hide the right one."""
        now = self.clock()
        candidates = self._reveal(session, checker, message)
        for card, reading in candidates:
            if expected_uid is not None and expected_uid != reading.uid:
                continue
            try:
                checker.check_mac(message, reading, card.key_version)
            except (CardIntegrityError, KeyStoreError):
                continue
            return self._answer(method, actor, card, now, counter=reading.counter)
        card, reading = candidates[0]
        reason = "uid_mismatch" if expected_uid not in (None, reading.uid) else "sun_mac"
        return self._refusal(method, actor, card.card_number, reason, now)

    # --- the write ------------------------------------------------------------------------------

    def commit(self, session: Session, pending: Pending) -> Verification:
        """The writes of a checked verification: the SUN counter compare-and-set, then its audit row.

        A counter that does not grow turns the answer into NOK ``replay`` (no member view)."""
        answer = pending.answer
        if pending.counter is not None and answer.card_number is not None and not advance_sun_counter(
                session, card_number=answer.card_number, counter=pending.counter,
                now=answer.at or self.clock()):
            answer = Verification(Verdict.NOK, "replay", answer.method, answer.card_number, at=answer.at)
        self._audit(session, answer, pending.actor)
        return answer

    def _reveal(self, session: Session, checker: SunChecker,
                message: SunMessage) -> list[tuple[LiveCard, SunReading]]:
        """The cards named by the UIDs PICCData opens to (404 when it names none of ours)."""
        try:
            readings = checker.reveal(message)
        except CardIntegrityError:
            raise NotFound("the tapped card is not one of ours", reason="unknown_card") from None
        keys = self._keys()
        found = []
        for _version, reading in readings:
            row = CARD_BY_UID.first(session, uid_hash=keys.uid_hash(reading.uid))
            if row is not None:
                found.append((LiveCard.of(row), reading))
        if not found:
            raise NotFound("no card with this chip", reason="unknown_card")
        return found

    def _card_by_uid(self, session: Session, uid: bytes) -> LiveCard:
        row = repo.card_with_member(session, uid_hash=self._keys().uid_hash(uid))
        if row is None:
            raise NotFound("no card with this chip", reason="unknown_card")
        return LiveCard.of(row)

    def _keys(self) -> CardKeys:
        if self.card_keys is None:
            log.warning("card master keys are not loaded: reader-tap verification is unavailable")
            raise NotConfigured
        return self.card_keys

    # --- reader tap ----------------------------------------------------------------------------

    def create_challenge(self, session: Session, *, client_id: str) -> Challenge:
        now = self.clock()
        challenge = Challenge(nonce=self.rng(CHALLENGE_SIZE), client_id=client_id, created_at=now,
                              expires_at=now + CHALLENGE_TTL)
        repo.purge_challenges(session, expired_before=now - CHALLENGE_PURGE_AFTER,
                              limit=CHALLENGE_PURGE_BATCH)
        repo.add_challenge(session, challenge=challenge)
        return challenge

    def verify_card(self, session: Session, *, actor: str, answer: CardAnswer) -> Verification:
        return self.commit(session, self._check_card(session, actor, answer))

    def _check_card(self, session: Session, actor: str, answer: CardAnswer) -> Pending:
        now = self.clock()
        self._consume(session, answer.challenge, actor, now)
        card = self._card_by_uid(session, answer.uid)
        try:
            presented = answer.credential if answer.credential is not None else card.credential or b""
            claims = check_credential(self.trust, presented, now)
            same_credential(presented, card.credential)
        except CredentialVerificationError as exc:
            return self._refusal("card", actor, card.card_number, exc.reason, now)
        if claims.card_number != card.card_number:
            return self._refusal("card", actor, card.card_number, "credential_mismatch", now)
        if answer.kind == "sun":
            checker = self.sun_checker()
            message = checker.parse(answer.payload.decode("ascii", "replace"))
            return self._sun(session, checker, message, actor, "card", expected_uid=answer.uid)
        return self._card_internal_auth(actor, answer, card, now)

    def _card_internal_auth(self, actor: str, answer: CardAnswer, card: LiveCard, now: datetime) -> Pending:
        profile = self.profiles.get(card.profile)
        if profile is None or profile.family != "fmcos" or answer.kind != "internal_auth":
            return self._refusal("card", actor, card.card_number, "proof_kind", now)
        try:
            check_internal_auth(profile, self._keys(), key_version=card.key_version, uid=answer.uid,
                                challenge=answer.challenge, cryptogram=answer.payload)
        except (CardIntegrityError, KeyStoreError):
            return self._refusal("card", actor, card.card_number, "card_proof", now)
        return self._answer("card", actor, card, now)

    @staticmethod
    def _consume(session: Session, nonce: bytes, client_id: str, now: datetime) -> None:
        if repo.consume_challenge(session, nonce=nonce, client_id=client_id, now=now):
            return
        known = repo.get_challenge(session, nonce=nonce)
        if known is None or known.client_id != client_id:
            raise Conflict("no such challenge for this client", reason="challenge_unknown")
        if known.used_at is not None:
            raise Conflict("the challenge was already used", reason="challenge_used")
        raise Conflict("the challenge has expired", reason="challenge_expired")

    # --- shared endings ------------------------------------------------------------------------

    @staticmethod
    def _answer(method: str, actor: str, card: LiveCard, now: datetime, *,
                counter: int | None = None) -> Pending:
        verdict, reason = live_status(card, card.member, now=now)
        status = CardStatus(card.status).value if card.status else None
        return Pending(Verification(verdict, reason, method, card.card_number, status, card.member, now),
                       actor, counter)

    @staticmethod
    def _refusal(method: str, actor: str, card_number: str | None, reason: str, now: datetime) -> Pending:
        return Pending(Verification(Verdict.NOK, reason, method, card_number, at=now), actor)

    @staticmethod
    def _audit(session: Session, answer: Verification, actor: str) -> None:
        event = AuditEvent(event_type=f"verify.{answer.method}", actor=actor,
                           subject=answer.card_number or "", outcome=answer.verdict.audit_outcome,
                           reason=answer.reason or "verified", timestamp=answer.at or datetime.now(UTC))
        record_event(session, event)


def _card(session: Session, card_number: str) -> LiveCard:
    row = CARD_BY_NUMBER.first(session, card_number=card_number)
    if row is None:
        raise NotFound(f"no card {card_number}", reason="unknown_card")
    return LiveCard.of(row)
