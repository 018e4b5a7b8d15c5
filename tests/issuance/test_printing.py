"""Print sheets: the QR codes on the rasterised PDF (pdftoppm + zxing-cpp, independent of the
renderer) decode to the cards' credentials; the CJK font is embedded; reprints are recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlmodel import select

from cardsvc.credential.qr import from_qr_text, to_qr_text
from cardsvc.errors import IssuanceError
from cardsvc.issuance.lifecycle import LifecycleService
from cardsvc.issuance.printing import Layout, PrintService, grouped
from cardsvc.issuance.workflow import OutcomeKind
from cardsvc.registry.cards import Card, JournalState, PrintRecord
from tests.issuance.support import Desk, blank_cards, clock
from tests.support.cards import DirectConnection


def issue_all(desk: Desk, count: int) -> list[Card]:
    workflow = desk.workflow()
    for chip in blank_cards("ntag424", count):
        outcome = workflow.process(DirectConnection(chip), workflow.journal.reserve(desk.batch))  # type: ignore[arg-type]
        assert outcome.kind is OutcomeKind.issued
    with desk.sessions() as session:
        return list(session.exec(select(Card).where(Card.state == JournalState.issued)))


# QR codes only: with every format on, zxing now and then reads a 1-D code out of printed text.
QR_ONLY = zxingcpp.BarcodeFormat.QRCode


def decode_pdf(pdf: Path, tmp_path: Path) -> list[str]:
    prefix = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "300", "-png", str(pdf), str(prefix)], check=True, timeout=60)
    texts: list[str] = []
    for page in sorted(tmp_path.glob("page*.png")):
        texts += [r.text for r in zxingcpp.read_barcodes(Image.open(page), formats=QR_ONLY)]
    return texts


@pytest.mark.parametrize("layout", list(Layout))
def test_sheet_qr_codes_decode_to_the_credentials(desk: Desk, tmp_path: Path, layout: Layout) -> None:
    desk.create_batch()
    cards = issue_all(desk, 3)
    desk.journal().reserve(desk.batch)  # a reservation: never printed
    sheet = tmp_path / "sheet.pdf"
    report = PrintService(desk.sessions, clock=clock).export_sheet("B1", sheet, layout)
    assert (report.cards, report.reprints) == (3, 0)
    decoded = decode_pdf(sheet, tmp_path)
    assert sorted(decoded) == sorted(to_qr_text(c.credential or b"") for c in cards)
    assert {from_qr_text(t) for t in decoded} == {c.credential for c in cards}
    text = subprocess.run(["pdftotext", str(sheet), "-"], capture_output=True, text=True, check=True).stdout
    assert "城关镇第一机械厂工会" in text and grouped(cards[0].card_number) in text
    assert "张*丰" in text and "张三丰" not in text  # masked names only
    fonts = subprocess.run(["pdffonts", str(sheet)], capture_output=True, text=True, check=True).stdout
    assert "DroidSansFallback" in fonts and "DejaVuSans" in fonts and " yes " in fonts  # embedded


def test_reprints_are_recorded_and_only_active_issued_cards_print(desk: Desk, tmp_path: Path) -> None:
    desk.create_batch()
    cards = issue_all(desk, 2)
    service = PrintService(desk.sessions, clock=clock)
    service.export_sheet("B1", tmp_path / "a.pdf")
    LifecycleService(desk.sessions, actor="clerk", clock=clock).suspend(cards[0].card_number)
    again = service.export_sheet("B1", tmp_path / "b.pdf")
    assert (again.cards, again.reprints) == (1, 1)
    qr = service.export_qr("B1", tmp_path / "qr", "png")
    assert (qr.cards, qr.reprints) == (1, 0)
    (png,) = (tmp_path / "qr").glob("*.png")
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(png), formats=QR_ONLY)]
    assert decoded == [to_qr_text(cards[1].credential or b"")]
    with desk.sessions() as session:
        records = list(session.exec(select(PrintRecord)))
    assert [(r.kind, r.reprint) for r in records] == [("sheet", False), ("sheet", False), ("sheet", True),
                                                       ("qr", False)]


def test_nothing_to_print_is_refused(desk: Desk, tmp_path: Path) -> None:
    desk.create_batch()
    with pytest.raises(IssuanceError, match="no issued card"):
        PrintService(desk.sessions, clock=clock).export_sheet("B1", tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
