"""`cardsvc batch`: create, list, status, issue (multi-reader station), recover, export (print)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from cardsvc.cli.output import console, emit_json, emit_table, err_console
from cardsvc.config import Settings, get_settings
from cardsvc.credential.keystore import KeyStore, open_key_store
from cardsvc.errors import IssuanceError
from cardsvc.issuance.batches import BatchService, BatchSpec, BatchStatus, Selection, batch_context
from cardsvc.issuance.journal import Journal
from cardsvc.issuance.printing import Layout, PrintService
from cardsvc.issuance.readers import PcscReaderSource, reader_names
from cardsvc.issuance.recovery import Recovery
from cardsvc.issuance.station import CardSource, EventKind, Station, StationEvent, Worker
from cardsvc.issuance.workflow import BatchContext, CardWorkflow, OutcomeKind
from cardsvc.profiles.loader import load_profiles
from cardsvc.registry.db import SessionFactory, engine_for, require_head, session_factory

app = typer.Typer(help="Card batches: create, issue on readers, recover, print.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReadersOption = Annotated[list[str] | None, typer.Option(
    "--readers", help="'all' (default) or reader names; repeat the option for several")]


def register(app_root: typer.Typer) -> None:
    """Add `cardsvc batch …` to the root app."""
    app_root.add_typer(app, name="batch")


@dataclass
class Desk:
    settings: Settings
    sessions: SessionFactory
    store: KeyStore

    @classmethod
    def open(cls) -> Desk:
        settings = get_settings()
        engine = engine_for(settings)
        require_head(engine)
        return cls(settings, session_factory(engine), open_key_store(settings))

    def station_name(self, reader: str = "") -> str:
        return f"{socket.gethostname()}:{reader}" if reader else socket.gethostname()


def _status_row(status: BatchStatus) -> dict[str, Any]:
    return {"label": status.label, "profile": status.profile, "key_version": status.key_version,
            "members": status.members, "pending": status.pending_members, **dict(status.states)}


STATE_COLUMNS = ("reserved", "writing", "written", "verified", "issued", "voided", "spoiled")


def _show_statuses(statuses: list[BatchStatus], as_json: bool) -> None:
    rows = [_status_row(s) for s in statuses]
    if as_json:
        emit_json(rows)
    else:
        emit_table("Batches", ("label", "profile", "key_version", "members", "pending", *STATE_COLUMNS),
                   rows)


@app.command("create")
def create(label: Annotated[str, typer.Argument(help="batch label, e.g. 2025-Q3-城关镇")],
           profile: Annotated[str, typer.Option(help="firmware profile name")] = "ntag424-dna",
           org: Annotated[str | None, typer.Option(help="organisation code: its whole subtree")] = None,
           category: Annotated[str | None, typer.Option(help="member category code")] = None,
           members: Annotated[Path | None, typer.Option(help="file of member public ids, one a line")] = None,
           prefix: Annotated[str, typer.Option(help="issuer prefix digits of card numbers")] = "31",
           year: Annotated[int | None, typer.Option(help="year in card numbers (default: this year)")] = None,
           valid_days: Annotated[int, typer.Option(help="credential validity in days")] = 3 * 365,
           length: Annotated[int, typer.Option(help="card number length (12-16)")] = 12,
           key_version: Annotated[int | None, typer.Option(help="master-key version (default newest)")]
           = None,
           init_keys: Annotated[bool, typer.Option("--init-keys", help="create missing card master keys")]
           = False,
           as_json: JsonOption = False) -> None:
    """Create a batch: members frozen now, numbers allocated as cards are issued."""
    desk = Desk.open()
    profiles = load_profiles(desk.settings.effective_profiles_dir)
    if profile not in profiles:
        raise IssuanceError(f"no profile {profile!r}; installed: {', '.join(sorted(profiles))}")
    spec = BatchSpec(label=label, profile=profiles[profile], prefix=prefix,
                     year=year or dt.datetime.now(dt.UTC).year, valid_days=valid_days,
                     selection=Selection(org, category, members), key_version=key_version,
                     number_length=length)
    status = BatchService(desk.sessions).create(spec, desk.store, issuer=desk.settings.issuer,
                                                init_keys=init_keys)
    _show_statuses([status], as_json)


@app.command("list")
def list_batches(as_json: JsonOption = False) -> None:
    """Every batch with its journal counts."""
    _show_statuses(BatchService(Desk.open().sessions).list(), as_json)


@app.command("status")
def status(label: str, as_json: JsonOption = False) -> None:
    """One batch: members, pending members, cards per journal state."""
    _show_statuses([BatchService(Desk.open().sessions).status(label)], as_json)


# --- the station ---------------------------------------------------------------------------------


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    spoiled: int = 0
    other: int = 0
    seconds: float = 0.0
    message: str = ""
    started: float = field(default_factory=lambda: dt.datetime.now(dt.UTC).timestamp())

    def add(self, event: StationEvent) -> None:
        if event.outcome is None:
            self.message = event.message or event.kind.value
            return
        kind = event.outcome.kind
        self.done += kind is OutcomeKind.issued
        self.failed += kind is OutcomeKind.failed
        self.spoiled += kind is OutcomeKind.spoiled
        self.other += kind in (OutcomeKind.refused, OutcomeKind.already_issued)
        self.message = f"{kind.value} {event.outcome.card_number or ''} {event.outcome.reason}".strip()

    def rate(self) -> float:
        minutes = max(dt.datetime.now(dt.UTC).timestamp() - self.started, 1e-6) / 60
        return self.done / minutes


class Progress:
    """Per-reader and total counts, cards/min and ETA, redrawn on every event."""

    def __init__(self, readers: list[str], pending: int) -> None:
        self.tallies = {r: Tally() for r in readers}
        self.pending = pending
        self._lock = threading.Lock()

    def __call__(self, event: StationEvent) -> None:
        with self._lock:
            self.tallies[event.reader].add(event)

    def table(self) -> Table:
        table = Table(title="issuing")
        for column in ("reader", "done", "failed", "spoiled", "refused/seen", "cards/min", "ETA", "last"):
            table.add_column(column)
        with self._lock:
            total_rate = sum(t.rate() for t in self.tallies.values())
            left = max(self.pending - sum(t.done for t in self.tallies.values()), 0)
            for reader, t in self.tallies.items():
                table.add_row(reader, str(t.done), str(t.failed), str(t.spoiled), str(t.other),
                              f"{t.rate():.1f}", _eta(left, total_rate), t.message[:60])
            table.add_row("total", str(sum(t.done for t in self.tallies.values())), "", "", "",
                          f"{total_rate:.1f}", _eta(left, total_rate), "")
        return table


def _eta(left: int, rate: float) -> str:
    return "—" if rate <= 0 else str(dt.timedelta(seconds=int(left / rate * 60)))


def _event_json(event: StationEvent) -> dict[str, Any]:
    out = event.outcome
    return {"reader": event.reader, "event": event.kind.value, "message": event.message,
            "outcome": out.kind.value if out else None, "card_number": out.card_number if out else None,
            "seconds": round(event.elapsed_s, 3)}


def _run_station(station: Station, render: Callable[[], None] | None) -> None:
    """Run until done; Ctrl-C asks every worker to finish its current card, then stop."""
    station.start()
    try:
        while not station.join(timeout_s=0.25):
            if render:
                render()
    except KeyboardInterrupt:
        err_console.print("stopping: finishing the current cards … (rerun to resume)")
        station.stop()
        station.join()


def _context(desk: Desk, label: str) -> BatchContext:
    batch = BatchService(desk.sessions).get(label)
    profiles = load_profiles(desk.settings.effective_profiles_dir)
    return batch_context(batch, profiles, desk.store, issuer=desk.settings.issuer,
                         public_base_url=desk.settings.public_base_url, now=_now())


def _workflows(desk: Desk, label: str, readers: list[str]) -> tuple[list[CardSource], list[CardWorkflow]]:
    ctx = _context(desk, label)
    sources: list[CardSource] = [PcscReaderSource(r) for r in readers]
    flows = [CardWorkflow(ctx, Journal(desk.sessions, actor=desk.station_name(r)), clock=_now)
             for r in readers]
    return sources, flows


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@app.command("issue")
def issue(label: str, readers: ReadersOption = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="check everything, write nothing")] = False,
          as_json: JsonOption = False) -> None:
    """Personalise and verify cards on every selected reader in parallel until the batch is done."""
    desk = Desk.open()
    names = reader_names(readers)
    if not names:
        raise IssuanceError("no reader found", hint="`cardsvc readers` lists them")
    sources, flows = _workflows(desk, label, names)
    pending = BatchService(desk.sessions).status(label).pending_members
    if dry_run:
        _dry_run(label, names, pending, as_json)
        return
    progress = Progress(names, pending)
    stop = threading.Event()
    sink = _json_sink(progress) if as_json else progress
    workers = [Worker(s, f, f.journal, sink, stop) for s, f in zip(sources, flows, strict=True)]
    station = Station(workers, stop)
    if as_json:
        _run_station(station, None)
    else:
        with Live(progress.table(), console=console, refresh_per_second=4) as live:
            _run_station(station, lambda: live.update(progress.table()))
            live.update(progress.table())
    _summary(desk, label, as_json)


def _json_sink(progress: Progress) -> Callable[[StationEvent], None]:
    def sink(event: StationEvent) -> None:
        progress(event)
        if event.kind in (EventKind.outcome, EventKind.paused, EventKind.error):
            print(json.dumps(_event_json(event), ensure_ascii=False), flush=True)  # JSON lines

    return sink


def _dry_run(label: str, readers: list[str], pending: int, as_json: bool) -> None:
    result = {"batch": label, "readers": readers, "pending_members": pending,
              "keys": "master keys, issuer signer and UID index loaded", "written": 0}
    if as_json:
        emit_json(result)
    else:
        console.print(f"dry run: batch {label}: {pending} members to issue on {len(readers)} readers "
                      f"({', '.join(readers)}); keys and signer ready; nothing written")


def _summary(desk: Desk, label: str, as_json: bool) -> None:
    status = BatchService(desk.sessions).status(label)
    if as_json:
        print(json.dumps({"summary": _status_row(status)}, ensure_ascii=False))
    else:
        _show_statuses([status], False)


@app.command("recover")
def recover(label: str, readers: ReadersOption = None,
            station: Annotated[str | None, typer.Option(
                help="the STOPPED station (host, or host:reader) whose reservations are voided and, with "
                     "--abandon, whose unpresented cards are spoiled")] = None,
            all_stations: Annotated[bool, typer.Option(
                "--all-stations", help="instead of --station: every station's reservations and cards — "
                "ALL stations must be stopped first (a running one would lose the card it is writing)")]
            = False,
            abandon: Annotated[bool, typer.Option(
                "--abandon", help="record cards that are not presented as spoiled")] = False,
            no_cards: Annotated[bool, typer.Option("--no-cards", help="do not wait for cards")] = False,
            as_json: JsonOption = False) -> None:
    """Resolve cards left between journal steps: present them on a reader; nothing is deleted."""
    if (station is None) == (not all_stations):
        raise typer.BadParameter("give --station NAME (a stopped station) or --all-stations (all stopped), "
                                 "not both: running stations are not recorded")
    desk = Desk.open()
    names = [] if no_cards else reader_names(readers)
    sources: list[CardSource] = [PcscReaderSource(r) for r in names]
    flow = CardWorkflow(_context(desk, label), Journal(desk.sessions, actor=desk.station_name("recover")),
                        clock=_now)
    recovery = Recovery(flow, desk.sessions)
    if recovery.unresolved() and sources:
        err_console.print(f"present these cards: {', '.join(recovery.unresolved())} (Ctrl-C to stop)")
    try:
        report = recovery.run(sources, lambda e: err_console.print(_event_line(e)) if e.outcome else None,
                              station=station, abandon_missing=abandon)
    except KeyboardInterrupt:
        recovery.stop.set()
        raise
    data = {"voided": list(report.voided), "finished": list(report.finished),
            "resolved": [o.card_number for o in report.outcomes if o.card_number],
            "abandoned": list(report.abandoned), "unresolved": list(report.unresolved)}
    if as_json:
        emit_json(data)
    else:
        for key, value in data.items():
            console.print(f"{key}: {', '.join(v for v in value if v) or '—'}")


def _event_line(event: StationEvent) -> str:
    out = event.outcome
    return f"{event.reader}: {out.kind.value} {out.card_number or ''} {out.reason}" if out else event.message


@app.command("export")
def export(label: str,
           sheet: Annotated[Path | None, typer.Option("--sheet", help="write a PDF print sheet")] = None,
           layout: Annotated[Layout, typer.Option(help="a4 sheet of faces or one cr80 page per card")]
           = Layout.a4,
           qr_dir: Annotated[Path | None, typer.Option("--qr-dir", help="write one QR image per card")]
           = None,
           qr_format: Annotated[str, typer.Option(help="png or svg")] = "png",
           as_json: JsonOption = False) -> None:
    """Print issued cards of a batch (every print is recorded; later ones as reprints)."""
    if sheet is None and qr_dir is None:
        raise typer.BadParameter("give --sheet FILE.pdf and/or --qr-dir DIR")
    service = PrintService(Desk.open().sessions)
    reports = []
    if sheet is not None:
        reports.append(service.export_sheet(label, sheet, layout))
    if qr_dir is not None:
        reports.append(service.export_qr(label, qr_dir, qr_format))
    rows = [{"target": str(r.target), "cards": r.cards, "reprints": r.reprints} for r in reports]
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            console.print(f"wrote {row['target']}: {row['cards']} cards ({row['reprints']} reprints)")
