"""What the service-point pages read and run, through the verification workflows the API uses.

* Verify: a QR text (``verify_qr``) or a phone tap's SUN URL (``verify_sun``), with the page user as
  the actor (``web:<staff id>``, see :mod:`cardsvc.web.acting`).
* The tap screen also shows taps made at the point's terminal (``cardsvc tap`` with a token bound to
  this point): :meth:`PointDesk.latest` reads the newest ``verify.*`` audit row of the point's actors.
* Who may record for a tapped member: the actor that verified the card (the page user, or the
  point's terminal client); :func:`record_service` then applies the API's rule — a successful
  verification by that client within ``TAP_WINDOW`` — so a service cannot be recorded for a card
  nobody presented. The record carries the verifying client's id.
* Days and months are local (``tz``, the settings' ``CARDSVC_TIMEZONE``): "today" starts at local
  midnight and a record counts in its local month (see :mod:`cardsvc.localtime`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlmodel import Session

from cardsvc.errors import NotFound, PermissionDenied
from cardsvc.localtime import day_start, local_month
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.verification_models import ApiClient, ServicePoint, ServiceRecord
from cardsvc.verification.outcome import LiveCard, Verification, live_status
from cardsvc.verification.points import TAP_WINDOW, ServiceRequest, record_service, statistics
from cardsvc.verification.roles import Role
from cardsvc.verification.service import VerificationService
from cardsvc.verification.tokens import ClientRecord
from cardsvc.verification.views import member_view

MONTHS_SHOWN = 12
AUDIT, CLIENT, RECORD, ITEM, MEMBER = repo.AUDIT, repo.CLIENT, repo.RECORD, repo.ITEM, repo.MEMBER


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest verification by one of the point's actors (the tap screen polls it)."""

    seq: int
    card_number: str
    outcome: str
    reason: str
    actor: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Shown:
    """The member shown on the tap screen: the verdict, the role's view, who verified."""

    card_number: str
    verdict: str
    reason: str | None
    view: dict[str, Any]
    via: str


@dataclass(frozen=True, slots=True)
class TodayRow:
    at: dt.datetime
    item: str
    name: str
    card_number: str


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    count: int


def looks_like_sun_url(text: str) -> bool:
    """A phone tap's URL (``…/t?p=…&m=…``) rather than a QR text."""
    parts = urlsplit(text.strip())
    return parts.scheme in ("http", "https") and "p=" in parts.query and "m=" in parts.query


def sun_path(text: str) -> str:
    """The path and query of a SUN URL (what the checker reads; the host does not matter)."""
    parts = urlsplit(text.strip())
    return f"{parts.path}?{parts.query}"


class PointDesk:
    """The point's services for one page user (``client``: the user as a bound client)."""

    def __init__(self, svc: VerificationService, client: ClientRecord, *, tz: dt.tzinfo) -> None:
        if client.role is not Role.service_point or client.service_point_id is None:
            raise PermissionDenied("the service-point pages need a user bound to a service point")
        self.svc, self.client, self.point, self.tz = svc, client, client.service_point_id, tz

    # --- verify ----------------------------------------------------------------------------------

    def verify(self, text: str) -> Verification:
        """One verification (QR text or SUN URL) by the page user; one audit row."""
        actor = self.client.client_id
        if looks_like_sun_url(text):
            return self.svc.db.transact(lambda s: self.svc.verify_sun(s, actor=actor, url=sun_path(text)))
        return self.svc.db.transact(lambda s: self.svc.verify_qr(s, actor=actor, qr_text=text.strip()))

    def terminal_ids(self, session: Session) -> list[str]:
        """The live API clients bound to this point (its ``cardsvc tap`` terminals)."""
        query = select(CLIENT.c.client_id).where(CLIENT.c.service_point_id == self.point,
                                                 CLIENT.c.role == Role.service_point.value,
                                                 CLIENT.c.revoked.is_(False))
        return [str(c) for c in session.connection().execute(query).scalars()]

    def actors(self, session: Session) -> list[str]:
        return [self.client.client_id, *self.terminal_ids(session)]

    def latest(self) -> Latest | None:
        """The newest verification at this point within the tap window (taps at the terminal too)."""
        since = self.svc.clock() - TAP_WINDOW

        def read(session: Session) -> Latest | None:
            query = (select(AUDIT).where(AUDIT.c.actor.in_(self.actors(session)),
                                         AUDIT.c.event_type.like("verify.%"), AUDIT.c.ts >= since)
                     .order_by(AUDIT.c.seq.desc()).limit(1))
            row = session.connection().execute(query).first()
            if row is None:
                return None
            return Latest(row.seq, row.subject, row.outcome, row.reason, row.actor, row.ts)

        return self.svc.db.read(read)

    # --- the member on the screen ----------------------------------------------------------------

    def shown(self, card_number: str) -> Shown | None:
        """The member of ``card_number`` if one of the point's actors verified it within the window."""
        since = self.svc.clock() - TAP_WINDOW

        def read(session: Session) -> Shown | None:
            via = next((a for a in self.actors(session) if repo.recent_ok_verification(
                session, actor=a, subject=card_number, since=since)), None)
            row = repo.card_with_member(session, card_number=card_number)
            if via is None or row is None:
                return None
            card = LiveCard.of(row)
            verdict, reason = live_status(card, card.member, now=self.svc.clock())
            result = Verification(verdict, reason, "shown", card.card_number, card.status, card.member)
            view = member_view(session, result, self.client, self.svc.cipher, tz=self.tz) or {}
            return Shown(card.card_number, verdict.value, reason, view, via)

        return self.svc.db.read(read)

    # --- record ------------------------------------------------------------------------------------

    def record(self, *, card_number: str, item: str, via: str, key: str) -> ServiceRecord:
        """Record ``item`` for the card, as the client ``via`` that verified it (once per ``key``)."""

        def work(session: Session) -> ServiceRecord:
            client = self._verifier(session, via)
            request = ServiceRequest(item_code=item, card_number=card_number, idempotency_key=key)
            record, _replayed = record_service(session, client, request, self.svc.clock(), tz=self.tz)
            return record

        return self.svc.db.transact(work)

    def _verifier(self, session: Session, via: str) -> ClientRecord:
        """The page user, or a live terminal client bound to this point — nobody else."""
        if via == self.client.client_id:
            return self.client
        row = session.get(ApiClient, via)
        if row is None or row.revoked or row.service_point_id != self.point:
            raise PermissionDenied("not a terminal of this service point")
        return ClientRecord(client_id=row.client_id, label=row.label, role=Role(row.role),
                            token_hash=bytes(row.token_hash), created_at=row.created_at,
                            service_point_id=row.service_point_id)

    # --- reference data, today, statistics --------------------------------------------------------

    def point_name(self) -> str:
        def read(session: Session) -> str:
            point = session.get(ServicePoint, self.point)
            if point is None:
                raise NotFound(f"no service point {self.point}", reason="unknown_service_point")
            return point.name

        return self.svc.db.read(read)

    def items(self) -> list[tuple[str, str]]:
        return self.svc.db.read(lambda s: [(i.code, i.name) for i in repo.list_service_items(s)])

    def today(self) -> list[TodayRow]:
        """Today's records at this point (the local day, ``tz``), newest first."""
        start = day_start(self.svc.clock(), self.tz)
        query = (select(RECORD.c.recorded_at, ITEM.c.name, MEMBER.c.name, RECORD.c.card_number)
                 .join(ITEM, ITEM.c.code == RECORD.c.item_code)
                 .join(MEMBER, MEMBER.c.id == RECORD.c.member_id)
                 .where(RECORD.c.service_point_code == self.point, RECORD.c.recorded_at >= start)
                 .order_by(RECORD.c.recorded_at.desc(), RECORD.c.id.desc()))
        return self.svc.db.read(lambda s: [TodayRow(*row) for row in s.connection().execute(query)])

    def month_items(self, month: str) -> list[Bar]:
        """Services per item in ``month`` at this point (the chart), largest first."""
        names = dict(self.items())
        rows = self.svc.db.read(lambda s: statistics(s, self.client, point=None, month=month))
        bars = [Bar(names.get(r.item, r.item), r.count) for r in rows]
        return sorted(bars, key=lambda b: (-b.count, b.label))

    def months(self) -> list[Bar]:
        """Services per month at this point, the last :data:`MONTHS_SHOWN` months with any."""
        rows = self.svc.db.read(lambda s: statistics(s, self.client, point=None, month=None))
        totals: dict[str, int] = {}
        for row in rows:
            totals[row.month] = totals.get(row.month, 0) + row.count
        return [Bar(m, n) for m, n in sorted(totals.items())][-MONTHS_SHOWN:]

    def this_month(self) -> str:
        """The current local month, ``YYYY-MM`` (the records page's default)."""
        return local_month(self.svc.clock(), self.tz)



def bar_lengths(bars: list[Bar], length: int) -> list[int]:
    """Bar lengths in SVG units (the largest bar is ``length``)."""
    top = max((b.count for b in bars), default=0)
    return [round(length * b.count / top) if top else 0 for b in bars]

