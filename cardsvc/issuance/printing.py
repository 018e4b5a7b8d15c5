"""Print sheets and QR files for issued cards; every print is recorded (later ones as reprints).

``a4``: an A4 sheet of CR80-sized card faces (2 × 5 per page, cut marks are the tile borders);
``cr80``: one 85.6 × 54 mm page per card for a card printer. A face carries the QR code of the
credential (``UC1:`` + base45, rendered by :mod:`cardsvc.credential.qr`), the card number in groups
of four, the masked name and the organisation. A CJK TrueType font is embedded (subset) so the
sheet prints the same anywhere. Only issued, active cards are printed.

Files and records agree: the PDF or QR images are written under temporary names beside their
targets, the print records commit, and only then are the files renamed into place (atomic within a
directory); if rendering, recording or the commit fails the temporary files are removed and nothing
is left that looks printed but is not recorded. A database failure is a
:class:`~cardsvc.errors.RegistryError` (the pages show "database unavailable", the CLI its hint).
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from fpdf import FPDF
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from cardsvc.credential.qr import render_qr_png, render_qr_svg, to_qr_text
from cardsvc.errors import ConfigError, IssuanceError, RegistryError
from cardsvc.issuance.journal import Clock
from cardsvc.logging import get_logger
from cardsvc.registry import card_repo
from cardsvc.registry.cards import Card
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.masking import PiiKind, mask
from cardsvc.registry.models import Member, Organisation, utcnow

log = get_logger(__name__)

CJK_FONTS = (
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # Debian fonts-droid-fallback
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)
LATIN_FONTS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),)  # fonts-dejavu-core
CARD_W, CARD_H = 85.6, 54.0
QR_MM = 24.0
A4_COLUMNS, A4_ROWS = 2, 5
A4_LEFT, A4_TOP = (210.0 - A4_COLUMNS * CARD_W) / 2, (297.0 - A4_ROWS * CARD_H) / 2
QR_DPI = 300


class Layout(StrEnum):
    a4 = "a4"
    cr80 = "cr80"


@dataclass(frozen=True, slots=True)
class CardFace:
    card_number: str
    qr_text: str
    masked_name: str
    organisation: str


@dataclass(frozen=True, slots=True)
class PrintReport:
    target: Path
    cards: int
    reprints: int


def find_font(candidates: Sequence[Path] = CJK_FONTS) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    names = ", ".join(p.name for p in candidates)
    raise ConfigError(f"no font found for the print sheet (looked for {names})",
                      hint="install fonts-droid-fallback and fonts-dejavu-core (tools/dev.sh does)")


def grouped(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def render_sheet(faces: Sequence[CardFace], layout: Layout, font: Path, latin: Path | None = None) -> bytes:
    """The PDF bytes: card faces on A4 tiles or one CR80 page each, fonts embedded (digits and
    ``*`` from the Latin font, Chinese from the CJK font as its fallback)."""
    if layout is Layout.cr80:
        pdf = FPDF(orientation="L", unit="mm", format=(CARD_H, CARD_W))
    else:
        pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.add_font("cjk", fname=str(font))
    pdf.add_font("latin", fname=str(latin or find_font(LATIN_FONTS)))
    pdf.set_fallback_fonts(["cjk"])
    pdf.set_creator("cardsvc")
    per_page = 1 if layout is Layout.cr80 else A4_COLUMNS * A4_ROWS
    for index, face in enumerate(faces):
        if index % per_page == 0:
            pdf.add_page()
        x, y = _tile_origin(index % per_page, layout)
        _draw_face(pdf, face, x, y, border=layout is Layout.a4)
    return bytes(pdf.output())


def _tile_origin(slot: int, layout: Layout) -> tuple[float, float]:
    if layout is Layout.cr80:
        return 0.0, 0.0
    row, column = divmod(slot, A4_COLUMNS)
    return A4_LEFT + column * CARD_W, A4_TOP + row * CARD_H


def _draw_face(pdf: FPDF, face: CardFace, x: float, y: float, *, border: bool) -> None:
    if border:
        pdf.set_draw_color(190, 190, 190)
        pdf.rect(x, y, CARD_W, CARD_H)
    png = render_qr_png(face.qr_text, size_mm=QR_MM, dpi=QR_DPI)
    pdf.image(io.BytesIO(png), x=x + 3, y=y + (CARD_H - QR_MM) / 2, w=QR_MM, h=QR_MM)
    left, width = x + QR_MM + 6, CARD_W - QR_MM - 9
    pdf.set_font("latin", size=8)
    pdf.set_xy(left, y + 8)
    pdf.multi_cell(width, 4, face.organisation[:40])
    pdf.set_font("latin", size=12)
    pdf.set_xy(left, y + 22)
    pdf.cell(width, 7, face.masked_name)
    pdf.set_font("latin", size=10)
    pdf.set_xy(left, y + 34)
    pdf.cell(width, 6, grouped(face.card_number))


class StagedFiles:
    """Files written beside their targets under temporary names, published by an atomic rename only
    after the print records commit (:meth:`publish`); on any failure they are removed on exit, so a
    print is on disk if and only if it is recorded."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, *_exc: object) -> None:
        for temp, _target in self._pending:
            temp.unlink(missing_ok=True)
        self._pending.clear()

    def write(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
        self._pending.append((temp, target))
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())

    def publish(self) -> list[Path]:
        """Rename every staged file onto its target (same directory: atomic on POSIX)."""
        published = []
        while self._pending:
            temp, target = self._pending.pop(0)
            temp.replace(target)
            published.append(target)
        return published


def stage_qr_files(faces: Sequence[CardFace], directory: Path, fmt: str, staged: StagedFiles) -> None:
    """One ``<card number>.png`` or ``.svg`` per card, staged until the print is recorded."""
    if fmt not in ("png", "svg"):
        raise ConfigError(f"QR format must be png or svg, not {fmt!r}")
    for face in faces:
        data = render_qr_png(face.qr_text) if fmt == "png" else render_qr_svg(face.qr_text).encode("utf-8")
        staged.write(directory / f"{face.card_number}.{fmt}", data)


@contextmanager
def storage_errors(label: str) -> Iterator[None]:
    """Any database failure while reading or recording a print becomes a :class:`RegistryError`.

    Its message names the batch and the driver error's class only: a driver's own text may quote
    row values (names, ID numbers), so it stays on the chained cause, which is not shown."""
    try:
        yield
    except SQLAlchemyError as exc:
        log.warning("print of batch %s not recorded: %s", label, type(exc).__name__)
        raise RegistryError(f"the print of batch {label} was not recorded: database error "
                            f"({type(exc).__name__}); nothing was printed",
                            hint="check that the database is running (CARDSVC_DATABASE_URL), "
                                 "then print again") from exc


class PrintService:
    """Export a batch's issued cards and record each print in the same transaction as the query."""

    def __init__(self, sessions: SessionFactory, *, clock: Clock = utcnow, font: Path | None = None) -> None:
        self._sessions = sessions
        self._clock = clock
        self._font = font

    def export_sheet(self, label: str, target: Path, layout: Layout = Layout.a4) -> PrintReport:
        with StagedFiles() as staged:
            with storage_errors(label), self._sessions() as session, session.begin():
                cards = self._printable(session, label)
                staged.write(target, render_sheet([_face(session, c) for c in cards], layout,
                                                  self._font or find_font()))
                reprints = self._record(session, cards, "sheet", str(target))
            staged.publish()  # only a committed print reaches its file name
        log.info("printed %d cards of batch %s to %s (%d reprints)", len(cards), label, target.name, reprints)
        return PrintReport(target, len(cards), reprints)

    def export_qr(self, label: str, directory: Path, fmt: str = "png") -> PrintReport:
        with StagedFiles() as staged:
            with storage_errors(label), self._sessions() as session, session.begin():
                cards = self._printable(session, label)
                stage_qr_files([_face(session, c) for c in cards], directory, fmt, staged)
                reprints = self._record(session, cards, "qr", str(directory))
            staged.publish()
        return PrintReport(directory, len(cards), reprints)

    @staticmethod
    def _printable(session: Session, label: str) -> list[Card]:
        batch = card_repo.get_batch(session, label=label)
        cards = card_repo.printable_cards(session, batch_id=batch.id or 0)
        if not cards:
            raise IssuanceError(f"batch {label} has no issued card to print")
        return cards

    def _record(self, session: Session, cards: Sequence[Card], kind: str, target: str) -> int:
        now = self._clock()
        records = [card_repo.add_print(session, card_id=c.id or 0, kind=kind, target=target, now=now)
                   for c in cards]
        return sum(r.reprint for r in records)


def _face(session: Session, card: Card) -> CardFace:
    member = session.get(Member, card.member_id)
    org = session.get(Organisation, member.org_id) if member else None
    if member is None or org is None or card.credential is None:
        raise IssuanceError(f"card {card.card_number}: member, organisation or credential missing")
    return CardFace(card.card_number, to_qr_text(card.credential), mask(PiiKind.name, member.name), org.name)
