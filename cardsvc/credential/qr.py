"""QR text of a credential (``UC1:`` + base45) and its rendering as PNG / SVG for a CR80 card face.

The text uses only QR alphanumeric characters, so the symbol is one alphanumeric segment with no
compression; a ≤ 128-byte credential gives ≤ 196 characters → QR version ≤ 9 at error correction M.
"""

from __future__ import annotations

import io

import segno

from cardsvc.credential.base45 import b45decode, b45encode
from cardsvc.errors import MalformedCredential

QR_PREFIX = "UC1:"
MAX_QR_TEXT = 4 + 3 * 512 // 2  # generous bound: anything longer is not ours
ERROR_CORRECTION = "m"
MAX_QR_VERSION = 9
# A 20 mm symbol (incl. quiet zone) fits beside the photo and text on an 85.6 × 54 mm card.
DEFAULT_SIZE_MM = 20.0
DEFAULT_DPI = 300
QUIET_ZONE = 4


def to_qr_text(cred: bytes) -> str:
    """``UC1:`` + base45 of the credential bytes."""
    return QR_PREFIX + b45encode(cred)


def from_qr_text(text: str) -> bytes:
    """The credential bytes inside QR text; wrong prefix or bad base45 → ``MalformedCredential``."""
    if len(text) > MAX_QR_TEXT:
        raise MalformedCredential("QR text too long", reason="too_large")
    if not text.startswith(QR_PREFIX):
        raise MalformedCredential("QR text does not start with UC1:", reason="prefix")
    return b45decode(text[len(QR_PREFIX) :])


def make_qr(text: str) -> segno.QRCode:
    """The QR symbol: one alphanumeric segment, ECC M (not boosted), version ≤ 9 asserted."""
    symbol = segno.make_qr(text, error=ERROR_CORRECTION, mode="alphanumeric", boost_error=False)
    if not isinstance(symbol.version, int) or symbol.version > MAX_QR_VERSION:
        raise MalformedCredential(
            f"QR version {symbol.version} exceeds {MAX_QR_VERSION}", reason="too_large"
        )
    return symbol


def qr_version(text: str) -> int:
    """The QR version the text renders at."""
    return int(make_qr(text).version)


def render_qr_png(text: str, *, size_mm: float = DEFAULT_SIZE_MM, dpi: int = DEFAULT_DPI) -> bytes:
    """A 1-bit PNG of the symbol at ``size_mm`` (quiet zone included) for a ``dpi`` printer.

    The module size is a whole number of printer dots, so the printed symbol may come out
    slightly smaller than ``size_mm``; it is never scaled by the printer driver.
    """
    symbol = make_qr(text)
    buffer = io.BytesIO()
    symbol.save(buffer, kind="png", scale=_dots_per_module(symbol, size_mm, dpi),
                border=QUIET_ZONE, dpi=dpi)
    return buffer.getvalue()


def render_qr_svg(text: str, *, size_mm: float = DEFAULT_SIZE_MM) -> str:
    """An SVG of the symbol whose width and height are ``size_mm`` millimetres (quiet zone included)."""
    symbol = make_qr(text)
    modules = _modules_with_border(symbol)
    buffer = io.BytesIO()
    symbol.save(buffer, kind="svg", scale=size_mm / modules, unit="mm", border=QUIET_ZONE,
                xmldecl=False, svgns=True, nl=False)
    return buffer.getvalue().decode("utf-8")


def _modules_with_border(symbol: segno.QRCode) -> int:
    width, _height = symbol.symbol_size(scale=1, border=QUIET_ZONE)
    return int(width)


def _dots_per_module(symbol: segno.QRCode, size_mm: float, dpi: int) -> int:
    dots = size_mm / 25.4 * dpi
    return max(1, int(dots // _modules_with_border(symbol)))
