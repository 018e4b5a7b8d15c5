"""One card through the journal: refuse, recognise, bind, personalise, verify, issue.

The order is fixed by the journal: a card is only touched for writing after its reservation and
chip binding committed; each later arrow commits before the next card step. A card whose chip is
already bound (torn, interrupted, presented twice) resumes from its recorded state. A card that is
not blank and not ours is refused and never written.

Signing is off the card's path: :meth:`CardWorkflow.presign` signs a reservation's credential
while the reader still waits for a card (``iat`` = signing time); ``bind`` stores it if it is still
fresh (≤ ``PRESIGN_MAX_AGE``), else signs anew.

Fault points (``hook(point, card_number)``) run after each step; tests raise from them to simulate
the station dying between steps.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from cardsvc.credential.claims import CredentialClaims
from cardsvc.credential.keys import IssuerKey, Signer
from cardsvc.credential.token import issue_credential
from cardsvc.drivers.base import CardDriver, CardState, MasterKeys, PersonalisationPlan
from cardsvc.errors import (
    AuthenticationDelay,
    CardError,
    CardIntegrityError,
    CardSpoiled,
    CardsvcError,
    ConfigError,
    CredentialError,
    IssuanceError,
    TransportError,
    WrongKey,
)
from cardsvc.issuance.journal import Clock, Journal
from cardsvc.issuance.keys import UidHasher
from cardsvc.issuance.proofs import check_card_proof, check_credential, check_readout
from cardsvc.logging import get_logger
from cardsvc.profiles import Profile
from cardsvc.registry.cards import Batch, Card, JournalState
from cardsvc.transport.base import CardConnection

log = get_logger(__name__)
TAP_PATH = "/t"
# The credential's profile claim must be short (128 bytes in all): a code per shipped profile.
CREDENTIAL_PROFILE_CODES = {"ntag424-dna": "n424", "fmcos-cpu": "fm12"}
PRESIGN_MAX_AGE = dt.timedelta(minutes=2)  # older: the member's categories may have changed
PROBE_CARD_NUMBER = "0"  # the start-up probe credential's card number (never written to a card)


def credential_profile_code(profile_name: str) -> str:
    return CREDENTIAL_PROFILE_CODES.get(profile_name, profile_name)


class FaultPoint(StrEnum):
    reserved = "reserved"
    bound = "bound"
    personalised = "personalised"
    written = "written"
    verified = "verified"
    issued = "issued"


class OutcomeKind(StrEnum):
    issued = "issued"
    already_issued = "already_issued"
    refused = "refused"
    failed = "failed"
    spoiled = "spoiled"


@dataclass(frozen=True, slots=True)
class CardOutcome:
    kind: OutcomeKind
    card_number: str | None
    reason: str = ""
    used_reservation: bool = False
    pending_issue: Card | None = None  # verified; its last arrow is left to the caller (finish)
    station_fault: bool = False  # a host-side key/credential problem: no card can be issued here


@dataclass(frozen=True, slots=True)
class Presigned:
    """A reservation's credential, signed before its card arrived (not yet in the journal)."""

    card_number: str
    credential: bytes
    issued_at: dt.datetime
    expires_at: dt.datetime


Hook = Callable[[FaultPoint, str], None]


def _no_hook(point: FaultPoint, card_number: str) -> None:
    del point, card_number


@dataclass
class BatchContext:
    """Everything a station needs for one batch; shared by its workers (the signer is locked)."""

    batch: Batch
    driver: CardDriver
    master_keys: MasterKeys
    signer: Signer
    issuer_keys: Sequence[IssuerKey]
    uid_hash: UidHasher
    issuer: str
    sun_base_url: str | None
    profiles: Mapping[str, Profile] = field(default_factory=dict)  # all installed: names a stranger
    _sign_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sign(self, claims: CredentialClaims) -> bytes:
        with self._sign_lock:
            return issue_credential(self.signer, claims)

    def probe(self, now: dt.datetime) -> None:
        """Sign a probe credential and verify it with the trusted issuer keys, before any card is
        touched: a station whose signer, trust list or key window is wrong fails here, not on a chip.
        Raises :class:`CredentialError` (the key store's or the verifier's)."""
        profile = credential_profile_code(self.batch.profile)
        claims = CredentialClaims(issuer=self.issuer, card_number=PROBE_CARD_NUMBER, issued_at=now,
                                  expires_at=now + dt.timedelta(days=1), profile=profile,
                                  key_version=self.batch.key_version, categories=())
        check_credential(self.sign(claims), self.issuer_keys, card_number=PROBE_CARD_NUMBER,
                         profile=profile, key_version=self.batch.key_version)


def sun_url(public_base_url: str) -> str:
    """The phone-tap page a card's SUN URL points at."""
    return public_base_url.rstrip("/") + TAP_PATH


class CardWorkflow:
    """Process cards of one batch for one station."""

    def __init__(self, ctx: BatchContext, journal: Journal, *, clock: Clock, hook: Hook = _no_hook) -> None:
        self.ctx = ctx
        self.journal = journal
        self._clock = clock
        self.hook = hook

    def now(self) -> dt.datetime:
        return self._clock().replace(microsecond=0)

    # --- entry points ------------------------------------------------------------------------

    def presign(self, reservation: Card) -> Presigned | None:
        """Sign ``reservation``'s credential now, while no card is on the reader (``None`` if the
        member's categories cannot be read: :meth:`process` then signs at binding)."""
        now = self._clock().replace(microsecond=0)
        try:
            return self._sign(reservation, now)
        except CardsvcError as exc:
            log.info("card %s: not pre-signed (%s); signing at binding", reservation.card_number, exc.code)
            return None

    def process(self, conn: CardConnection, reservation: Card, presigned: Presigned | None = None, *,
                defer_issue: bool = False) -> CardOutcome:
        """A presented card: resume it if its chip is known, else personalise it for ``reservation``
        (with ``presigned``'s credential when it is this reservation's and still fresh).

        ``defer_issue``: stop at ``verified`` (committed) and hand the card back as
        ``pending_issue``; the caller commits ``issued`` with :meth:`finish` while the card is let go
        (no card step follows ``verified``; a crash in between is finished by recovery)."""
        try:
            uid = self._identify(conn)
            known = self.journal.find_by_uid_hash(self.ctx.uid_hash(uid))
            if known is not None:
                return self._recognised(conn, known, uid, defer_issue=defer_issue)
            refusal = self._refusal(conn)
        except CardError as exc:
            kind = OutcomeKind.failed if isinstance(exc, TransportError) else OutcomeKind.refused
            return CardOutcome(kind, None, exc.message)
        if refusal:
            return CardOutcome(OutcomeKind.refused, None, refusal)
        try:
            card = self._bind(reservation, uid, presigned)
        except (CredentialError, ConfigError) as exc:  # signing failed: nothing bound, the card untouched
            return _station_fault(reservation.card_number, exc)
        return replace(self.complete(conn, card, uid, defer_issue=defer_issue), used_reservation=True)

    def resume(self, conn: CardConnection) -> CardOutcome:
        """Recovery: a presented card is only ever resumed, never bound to a new reservation."""
        try:
            uid = self._identify(conn)
        except CardError as exc:
            return CardOutcome(OutcomeKind.failed, None, exc.message)
        known = self.journal.find_by_uid_hash(self.ctx.uid_hash(uid))
        if known is None:
            return CardOutcome(OutcomeKind.refused, None, "this chip is not in the journal")
        return self._recognised(conn, known, uid)

    # --- steps -------------------------------------------------------------------------------

    def _identify(self, conn: CardConnection) -> bytes:
        profile = self.ctx.driver.profile
        if not profile.matches_atr(conn.atr):
            found = [p.name for p in self.ctx.profiles.values() if p.matches_atr(conn.atr)]
            what = f"a {' / '.join(found)} card" if found else f"ATR {conn.atr.hex().upper()}"
            raise _Refused(f"card of an unexpected profile ({what}); "
                           f"batch {self.ctx.batch.label} issues {profile.name}")
        return self.ctx.driver.read_uid(conn)

    def _refusal(self, conn: CardConnection) -> str:
        report = self.ctx.driver.status(conn)
        if report.state is CardState.factory:
            return ""
        return (f"card is not blank ({report.state.value}: {report.detail}) and not in the journal: "
                "personalised elsewhere; it was not touched")

    def _recognised(self, conn: CardConnection, card: Card, uid: bytes, *, defer_issue: bool = False
                    ) -> CardOutcome:
        state = JournalState(card.state)
        if state is JournalState.issued:
            return CardOutcome(OutcomeKind.already_issued, card.card_number,
                               f"card {card.card_number} is already issued (status {card.status})")
        if state in (JournalState.spoiled, JournalState.voided):
            return CardOutcome(OutcomeKind.refused, card.card_number,
                               f"this chip is recorded as {state.value} (card {card.card_number}); "
                               "set it aside")
        if card.batch_id != self.ctx.batch.id:
            return CardOutcome(OutcomeKind.refused, card.card_number,
                               f"card {card.card_number} belongs to another batch; recover that batch")
        log.info("card %s presented again in state %s: resuming", card.card_number, state.value)
        return self.complete(conn, card, uid, defer_issue=defer_issue)

    def _sign(self, reservation: Card, now: dt.datetime) -> Presigned:
        expires = now + dt.timedelta(days=self.ctx.batch.valid_days)
        claims = CredentialClaims(
            issuer=self.ctx.issuer, card_number=reservation.card_number, issued_at=now, expires_at=expires,
            profile=credential_profile_code(self.ctx.batch.profile), key_version=self.ctx.batch.key_version,
            categories=self.journal.member_categories(reservation.member_id))
        return Presigned(reservation.card_number, self.ctx.sign(claims), now, expires)

    def _fresh(self, reservation: Card, presigned: Presigned | None) -> Presigned:
        now = self._clock().replace(microsecond=0)
        if (presigned is not None and presigned.card_number == reservation.card_number
                and dt.timedelta(0) <= now - presigned.issued_at <= PRESIGN_MAX_AGE):
            return presigned
        return self._sign(reservation, now)

    def _bind(self, reservation: Card, uid: bytes, presigned: Presigned | None = None) -> Card:
        signed = self._fresh(reservation, presigned)
        card = self.journal.bind(reservation, uid_hash=self.ctx.uid_hash(uid), credential=signed.credential,
                                 issued_at=signed.issued_at, expires_at=signed.expires_at)
        self.hook(FaultPoint.bound, card.card_number)
        return card

    def complete(self, conn: CardConnection, card: Card, uid: bytes, *, defer_issue: bool = False
                 ) -> CardOutcome:
        """Walk a bound card from its recorded state to ``issued`` (``verified`` with
        ``defer_issue``); errors decide failed/spoiled."""
        try:
            card = self._walk(conn, card, uid, defer_issue=defer_issue)
        except (CredentialError, ConfigError) as exc:
            # The card's credential already matched the one signed (check_readout runs first), so a
            # credential, key-store or master-key error is the host's: the card keeps its state.
            return _station_fault(card.card_number, exc)
        except (CardSpoiled, WrongKey, AuthenticationDelay) as exc:
            return self._spoil(card, exc)
        except CardIntegrityError as exc:
            if JournalState(card.state) is JournalState.writing:
                return CardOutcome(OutcomeKind.failed, card.card_number, exc.message)
            return self._spoil(card, exc)
        except (CardError, IssuanceError) as exc:
            return CardOutcome(OutcomeKind.failed, card.card_number, exc.message)
        pending = card if JournalState(card.state) is JournalState.verified else None
        return CardOutcome(OutcomeKind.issued, card.card_number, pending_issue=pending)

    def finish(self, card: Card) -> Card:
        """verified → issued: the last arrow, no card step after it."""
        card = self.journal.issued(card)
        self.hook(FaultPoint.issued, card.card_number)
        return card

    def _walk(self, conn: CardConnection, card: Card, uid: bytes, *, defer_issue: bool = False) -> Card:
        if card.state == JournalState.writing:
            card = self._write(conn, card, uid)
        if card.state == JournalState.written:
            card = self._verify(conn, card, uid)
        if card.state == JournalState.verified and not defer_issue:
            card = self.finish(card)
        return card

    def _plan(self, card: Card) -> PersonalisationPlan:
        return PersonalisationPlan(card_number=card.card_number, credential=_credential(card),
                                   master_keys=self.ctx.master_keys, sun_base_url=self.ctx.sun_base_url)

    def _write(self, conn: CardConnection, card: Card, uid: bytes) -> Card:
        readout = self.ctx.driver.personalise(conn, self._plan(card))
        self.hook(FaultPoint.personalised, card.card_number)
        check_readout(readout, card_number=card.card_number, credential=_credential(card),
                      key_version=card.key_version, uid=uid)
        card = self.journal.written(card)
        self.hook(FaultPoint.written, card.card_number)
        return card

    def _verify(self, conn: CardConnection, card: Card, uid: bytes) -> Card:
        readout = self.ctx.driver.read_back(conn, self.ctx.master_keys)
        check_readout(readout, card_number=card.card_number, credential=_credential(card),
                      key_version=card.key_version, uid=uid)
        check_credential(readout.credential, self.ctx.issuer_keys, card_number=card.card_number,
                         profile=credential_profile_code(card.profile), key_version=card.key_version)
        check_card_proof(self.ctx.driver, conn, self.ctx.master_keys, uid)
        card = self.journal.verified(card)
        self.hook(FaultPoint.verified, card.card_number)
        return card

    def _spoil(self, card: Card, exc: CardsvcError) -> CardOutcome:
        reason = f"{exc.code}: {exc.message}"
        self.journal.spoil(card, reason)
        log.warning("card %s spoiled: %s", card.card_number, reason)
        return CardOutcome(OutcomeKind.spoiled, card.card_number, reason)


def _station_fault(card_number: str, exc: CardsvcError) -> CardOutcome:
    reason = (f"{exc.code}: {exc.message} — a key or credential problem on this station, not on the "
              f"card; card {card_number} is not spoiled: fix the key store / trust list and rerun")
    log.error("card %s: station fault: %s", card_number, exc.code)
    return CardOutcome(OutcomeKind.failed, card_number, reason, station_fault=True)


class _Refused(CardError):
    """The presented card is not one this batch may write."""

    code = "refused"


def _credential(card: Card) -> bytes:
    if card.credential is None:
        raise IssuanceError(f"card {card.card_number} has no credential recorded")
    return card.credential
