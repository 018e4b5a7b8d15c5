"""What the partner-base pages read and run, through the verification workflows the API uses.

* Verify a guest: ``verify_qr`` (camera or typed QR) or ``verify_sun`` (the phone-tap URL) with the
  page user as the actor, then :func:`member_view` for the partner role — masked name, last 4 ID
  digits, eligibility and quota per programme of the base; nothing more reaches the page.
* Check in / out: :func:`check_in` / :func:`check_out` of :mod:`cardsvc.verification.recuperation`
  (Idempotency-Key, quota taken by a conditional update, one check-in per member and programme).
* Offline: the signed trust bundle, the bundle key's COSE_Key (the page pins it), the programme's
  pseudonymous eligibility list, and the sync of check-ins queued offline — per item the same
  checklist as online, answered ``accepted`` / ``duplicate`` / ``conflict`` like ``/v1/checkins/sync``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from cardsvc.credential import TrustAnchor
from cardsvc.credential.keystore import KeyStore, signing_key
from cardsvc.credential.qr import to_qr_text
from cardsvc.errors import NotConfigured, NotFound, PermissionDenied
from cardsvc.localtime import day_start
from cardsvc.logging import get_logger
from cardsvc.registry import card_repo
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.masking import PiiKind, mask
from cardsvc.registry.verification_models import PartnerBase
from cardsvc.verification.outcome import Verdict, Verification
from cardsvc.verification.recuperation import (
    PSEUDONYM_SIZE,
    CheckinRequest,
    CheckinResult,
    SyncAnswer,
    check_in_committed,
    check_out,
    offline_list,
    sync,
)
from cardsvc.verification.roles import Role
from cardsvc.verification.service import VerificationService
from cardsvc.verification.tokens import ClientRecord
from cardsvc.verification.views import member_view
from cardsvc.web.service_point import looks_like_sun_url, sun_path

log = get_logger(__name__)
CHECKIN, MEMBER, PROGRAMME = repo.CHECKIN, repo.MEMBER, repo.PROGRAMME
GUEST_VIEW = ("masked_name", "id_last4", "eligibility", "quota")


@dataclass(frozen=True, slots=True)
class GuestCheck:
    """A verified guest as the partner sees them; ``qr`` is what a check-in sends back."""

    verdict: str
    reason: str | None
    view: dict[str, Any]
    qr: str | None

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "view": self.view, "qr": self.qr}


@dataclass(frozen=True, slots=True)
class Guest:
    checkin_id: int
    programme: str
    masked_name: str
    checked_in_at: dt.datetime
    checked_out_at: dt.datetime | None
    source: str


class BaseDesk:
    """The base's services for one page user (``client``: the user as a bound partner client)."""

    def __init__(self, svc: VerificationService, client: ClientRecord, *, tz: dt.tzinfo) -> None:
        if client.role is not Role.partner or client.partner_base_id is None:
            raise PermissionDenied("the partner pages need a user bound to a partner base")
        self.svc, self.client, self.base, self.tz = svc, client, client.partner_base_id, tz

    # --- verify ----------------------------------------------------------------------------------

    def verify(self, text: str) -> GuestCheck:
        """Verify a QR text or a phone tap's SUN URL; one audit row; the partner's view only."""
        actor = self.client.client_id

        def work(session: Session) -> GuestCheck:
            if looks_like_sun_url(text):
                result = self.svc.verify_sun(session, actor=actor, url=sun_path(text))
                qr = self._stored_qr(session, result)
            else:
                result = self.svc.verify_qr(session, actor=actor, qr_text=text.strip())
                qr = text.strip() if result.verdict is Verdict.OK else None
            view = member_view(session, result, self.client, self.svc.cipher, tz=self.tz) or {}
            shown = {k: view[k] for k in GUEST_VIEW if k in view}
            return GuestCheck(result.verdict.value, result.reason, shown, qr)

        return self.svc.db.transact(work)

    @staticmethod
    def _stored_qr(session: Session, result: Verification) -> str | None:
        """After a genuine phone tap: the card's own credential as QR text, for the check-in."""
        if result.verdict is not Verdict.OK or result.card_number is None:
            return None
        card = card_repo.get_card(session, card_number=result.card_number)
        return to_qr_text(card.credential) if card.credential else None

    # --- check in / out ----------------------------------------------------------------------------

    def check_in(self, programme: str, qr: str, key: str, *, at: dt.datetime | None = None,
                 source: str = "online") -> CheckinResult:
        """One check-in (:func:`~cardsvc.verification.recuperation.check_in_committed`)."""
        return check_in_committed(self.svc, self.client, CheckinRequest(programme, qr, key, at, source))

    def check_out(self, checkin_id: int) -> None:
        self.svc.db.transact(lambda s: check_out(s, self.svc, self.client, checkin_id))

    def sync(self, programme: str, items: list[tuple[str, str, dt.datetime]]) -> list[SyncAnswer]:
        """Check-ins made offline, each answered on its own (``/v1/checkins/sync``'s own function)."""
        requests = [CheckinRequest(programme, qr, key, at, "offline") for key, qr, at in items]
        return sync(self.svc, self.client, requests)

    # --- what the pages list -----------------------------------------------------------------------

    def base_name(self) -> str:
        def read(session: Session) -> str:
            base = session.get(PartnerBase, self.base)
            if base is None:
                raise NotFound(f"no partner base {self.base}", reason="unknown_partner_base")
            return base.name

        return self.svc.db.read(read)

    def programmes(self) -> list[tuple[str, str, int]]:
        """``(code, name, places left)`` of the base's programmes."""
        rows = self.svc.db.read(lambda s: repo.programmes_of_base(s, base_code=self.base))
        return [(r.code, r.name, max(0, r.quota - r.used)) for r in rows]

    def guests(self) -> list[Guest]:
        """Guests checked in today (the local day, ``tz``) or still in; masked names only."""
        start = day_start(self.svc.clock(), self.tz)
        query = (select(CHECKIN.c.id, CHECKIN.c.programme_code, MEMBER.c.name, CHECKIN.c.checked_in_at,
                        CHECKIN.c.checked_out_at, CHECKIN.c.source)
                 .join(MEMBER, MEMBER.c.id == CHECKIN.c.member_id)
                 .join(PROGRAMME, PROGRAMME.c.code == CHECKIN.c.programme_code)
                 .where(PROGRAMME.c.base_code == self.base,
                        or_(CHECKIN.c.checked_in_at >= start, CHECKIN.c.checked_out_at.is_(None)))
                 .order_by(CHECKIN.c.checked_in_at.desc(), CHECKIN.c.id.desc()))

        def read(session: Session) -> list[Guest]:
            return [Guest(i, p, mask(PiiKind.name, n), a, o, src)
                    for i, p, n, a, o, src in session.connection().execute(query)]

        return self.svc.db.read(read)

    # --- offline material ------------------------------------------------------------------------

    def bundle(self) -> tuple[bytes, str]:
        """The signed trust bundle and its ETag (as ``GET /v1/trust-bundle``)."""
        if self.svc.bundles is None:
            log.warning("no bundle key: the partner page cannot download a trust bundle")
            raise NotConfigured
        revoked = self.svc.db.read(card_repo.revoked_card_numbers)
        signed = self.svc.bundles.get(revoked)
        return signed.raw, signed.etag

    def eligibility(self, programme: str) -> dict[str, Any]:
        """The programme's pseudonymous list (as ``GET /v1/programmes/{code}/eligibility``)."""
        found = self.svc.db.read(lambda s: offline_list(s, self.client, programme, self.svc.list_secret))
        listed = found.programme
        return {"programme": listed.code, "base": listed.base_code,
                "starts_on": listed.starts_on.isoformat(), "ends_on": listed.ends_on.isoformat(),
                "timezone": str(self.svc.zone),
                "list_key": found.list_key.hex(), "pseudonym_bytes": PSEUDONYM_SIZE,
                "entries": [e.hex() for e in found.entries]}


def bundle_anchor(store: KeyStore, now: dt.datetime) -> str:
    """The bundle key as COSE_Key hex: the page pins it (``cardsvc trust anchor`` writes the same)."""
    return TrustAnchor.from_key(signing_key(store.bundle_keys(), now)).to_cose_key().hex()
