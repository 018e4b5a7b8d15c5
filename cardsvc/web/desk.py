"""What the issuance-desk pages read and run: the registry import, batches, journal progress per
reader, card lookup, lifecycle changes (audited) and print sheets — the same services the CLI uses.

Nothing here touches a reader: stations issue the cards (``cardsvc batch issue``); the desk reads
the journal they write.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from cardsvc.credential.keystore import KeyStore
from cardsvc.errors import NotFound
from cardsvc.issuance.batches import BatchService, BatchSpec, BatchStatus, Selection
from cardsvc.issuance.lifecycle import LifecycleChange, LifecycleService
from cardsvc.issuance.printing import Layout, PrintService
from cardsvc.profiles import load_profiles
from cardsvc.registry import card_repo, repo
from cardsvc.registry.cards import Card, CardEvent
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.importer import ImportReport
from cardsvc.registry.keys import cipher_from_store
from cardsvc.registry.masking import PiiKind, mask
from cardsvc.registry.models import Member, Organisation, utcnow
from cardsvc.registry.report import write_report
from cardsvc.registry.services import RegistryService
from cardsvc.verification.store import append_card_change
from cardsvc.web.context import WebContext

ACTIONS = ("suspend", "resume", "lost", "replace", "revoke")
PROGRESS_STATES = ("reserved", "writing", "written", "verified", "issued", "spoiled", "voided")
MEMBER_LIST_SUFFIXES = (".xlsx", ".csv")
MAX_LOOKUP = 50
KEEP_FILES = dt.timedelta(days=7)  # import reports are kept this long
_REPORT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CARD_NUMBER = re.compile(r"^\d{12,16}$")
_ID_NUMBER = re.compile(r"^\d{17}[\dXx]$")


@dataclass(frozen=True, slots=True)
class ReportSummary:
    report_id: str
    source: str
    dry_run: bool
    rows_read: int
    created: int
    updated: int
    unchanged: int
    rejected_rows: int
    problems: list[dict[str, Any]]
    notices: list[str]


@dataclass(frozen=True, slots=True)
class CardRow:
    card_number: str
    masked_name: str
    organisation: str
    state: str
    status: str
    batch: str


class Desk:
    """The desk's services over the pages' database and key store."""

    def __init__(self, web: WebContext) -> None:
        self.web = web
        self.sessions: SessionFactory = web.sessions
        self.store: KeyStore = web.key_store

    @property
    def work_dir(self) -> Path:
        path = self.web.settings.data_dir / "web-desk"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    # --- member lists -----------------------------------------------------------------------

    def import_members(self, upload: Path, *, source: str, org_code: str | None, dry_run: bool) -> str:
        """Import ``upload`` (deleted afterwards: it holds personal data); returns the report id."""
        try:
            service = RegistryService(self.sessions, cipher_from_store(self.store))
            report = service.import_members(upload, org_code=org_code, dry_run=dry_run)
        finally:
            upload.unlink(missing_ok=True)
        return self._keep_report(report, source)

    def _keep_report(self, report: ImportReport, source: str) -> str:
        self._prune()
        report_id = secrets.token_urlsafe(18)
        write_report(report, self.work_dir / f"{report_id}.xlsx")
        summary = ReportSummary(report_id, source, report.dry_run, report.rows_read, report.created,
                                report.updated, report.unchanged, report.rejected_rows,
                                [asdict(p) for p in report.problems], list(report.notices))
        (self.work_dir / f"{report_id}.json").write_text(json.dumps(asdict(summary), ensure_ascii=False))
        return report_id

    def _prune(self) -> None:
        """Reports (and any upload a crash left behind) older than :data:`KEEP_FILES` go."""
        cutoff = time.time() - KEEP_FILES.total_seconds()
        for path in self.work_dir.iterdir():
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def report(self, report_id: str) -> tuple[ReportSummary, Path]:
        if not _REPORT_ID.match(report_id):
            raise NotFound("no such import report", reason="unknown_report")
        summary_path = self.work_dir / f"{report_id}.json"
        if not summary_path.is_file():
            raise NotFound("no such import report", reason="unknown_report")
        data = json.loads(summary_path.read_text())
        return ReportSummary(**data), self.work_dir / f"{report_id}.xlsx"

    def upload_path(self, suffix: str) -> Path:
        return self.work_dir / f"upload-{secrets.token_hex(12)}{suffix}"

    # --- batches ----------------------------------------------------------------------------

    def organisations(self) -> list[tuple[str, str]]:
        with self.sessions() as session:
            orgs = session.exec(select(Organisation).order_by(col(Organisation.code)))
            return [(o.code, o.name) for o in orgs]

    def profiles(self) -> list[str]:
        return sorted(load_profiles(self.web.settings.effective_profiles_dir))

    def batches(self) -> list[BatchStatus]:
        return BatchService(self.sessions).list()

    def create_batch(self, *, label: str, profile: str, org_code: str | None, valid_days: int) -> BatchStatus:
        profiles = load_profiles(self.web.settings.effective_profiles_dir)
        if profile not in profiles:
            raise NotFound(f"no firmware profile {profile!r}", reason="unknown_profile")
        spec = BatchSpec(label=label, profile=profiles[profile], prefix="31", year=utcnow().year,
                         valid_days=valid_days, selection=Selection(org_code=org_code or None))
        return BatchService(self.sessions).create(spec, self.store, issuer=self.web.settings.issuer)

    def progress(self, label: str) -> dict[str, Any]:
        """Journal counts per reader of one batch, for the polling table.

        A card's reader is the station (``host:reader``) that made its latest journal arrow: the
        ``card.station`` column only holds a reservation while a station works on the card.
        """
        with self.sessions() as session:
            batch = card_repo.get_batch(session, label=label)
            rows: dict[str, dict[str, Any]] = {}
            for actor, state, count in session.exec(_progress_query(batch.id or 0)):
                key = _reader_of(actor)
                row = rows.setdefault(key, {"key": key, "reader": key, **dict.fromkeys(PROGRESS_STATES, 0)})
                row[str(state)] += count
            pending = card_repo.pending_members(session, batch_id=batch.id or 0)
        return {"batch": label, "columns": ["reader", *PROGRESS_STATES],
                "rows": sorted(rows.values(), key=lambda r: r["key"]), "pending": pending,
                "updated": dt.datetime.now(dt.UTC).strftime("%H:%M:%S")}

    def print_sheet(self, label: str) -> bytes:
        target = self.work_dir / f"sheet-{secrets.token_hex(8)}.pdf"
        try:
            PrintService(self.sessions).export_sheet(label, target, Layout.a4)
            return target.read_bytes()
        finally:
            target.unlink(missing_ok=True)

    # --- cards ------------------------------------------------------------------------------

    def lookup(self, query: str) -> list[CardRow]:
        """Cards by card number, ID number (blind index) or exact member name; masked names only."""
        query = query.strip()
        with self.sessions() as session:
            if _CARD_NUMBER.match(query):
                cards = list(session.exec(select(Card).where(col(Card.card_number) == query)))
            else:
                cards = [c for m in self._members(session, query)
                         for c in card_repo.cards_of_member(session, member_id=m.id or 0)]
            return [self._row(session, c) for c in cards[:MAX_LOOKUP]]

    def _members(self, session: Session, query: str) -> list[Member]:
        if _ID_NUMBER.match(query):
            index = cipher_from_store(self.store).blind_index(query.upper(), field="id_number")
            found = repo.find_member_by_index(session, id_index=index)
            return [found] if found else []
        return list(session.exec(select(Member).where(col(Member.name) == query).limit(MAX_LOOKUP)))

    @staticmethod
    def _row(session: Session, card: Card) -> CardRow:
        member = session.get(Member, card.member_id)
        org = session.get(Organisation, member.org_id) if member else None
        batch = card_repo.get_batch_by_id(session, batch_id=card.batch_id)
        return CardRow(card.card_number, mask(PiiKind.name, member.name) if member else "",
                       org.name if org else "", str(card.state), card.status or "", batch.label)

    def card(self, number: str) -> tuple[CardRow, Any]:
        view = LifecycleService(self.sessions, actor="web").show(number)
        with self.sessions() as session:
            row = self._row(session, card_repo.get_card(session, card_number=view.card_number))
        return row, view

    def change(self, number: str, action: str, *, actor: str, reason: str) -> LifecycleChange:
        if action not in ACTIONS:
            raise NotFound(f"no card action {action!r}", reason="unknown_action")
        service = LifecycleService(self.sessions, actor=actor, audit=append_card_change)
        method = getattr(service, action)
        change: LifecycleChange = method(number, reason=reason)
        return change


def _progress_query(batch_id: int) -> Any:
    """(actor of the card's latest journal event, card state, cards) for one batch."""
    latest = (select(col(CardEvent.card_id), func.max(col(CardEvent.id)).label("event_id"))
              .join(Card, col(Card.id) == col(CardEvent.card_id))
              .where(col(Card.batch_id) == batch_id, col(CardEvent.action) == "journal")
              .group_by(col(CardEvent.card_id)).subquery())
    return (select(col(CardEvent.actor), col(Card.state), func.count())
            .join(latest, latest.c.event_id == col(CardEvent.id))
            .join(Card, col(Card.id) == latest.c.card_id)
            .group_by(col(CardEvent.actor), col(Card.state)))


def _reader_of(station: str | None) -> str:
    """``host:reader`` → the reader's name (a station records where each card was written)."""
    if not station:
        return "—"
    return station.split(":", 1)[1] if ":" in station else station

