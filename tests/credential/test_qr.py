"""QR text and rendering: version ≤ 9 at ECC M, PNGs decode back exactly with zxing-cpp and zbar."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from cardsvc.credential import (
    Algorithm,
    SoftwareSigner,
    from_qr_text,
    issue_credential,
    render_qr_png,
    render_qr_svg,
    to_qr_text,
)
from cardsvc.credential.qr import make_qr, qr_version
from cardsvc.errors import MalformedCredential
from tests.support.credentials import make_claims


@pytest.fixture(params=list(Algorithm), ids=lambda a: a.label)
def longest_text(request: pytest.FixtureRequest) -> str:
    raw = issue_credential(SoftwareSigner.generate(request.param), make_claims("9" * 16))
    assert len(raw) == 128
    return to_qr_text(raw)


def test_largest_credential_is_version_8_at_m(longest_text: str) -> None:
    assert len(longest_text) == 4 + 128 // 2 * 3 == 196
    symbol = make_qr(longest_text)
    assert symbol.version == qr_version(longest_text) == 8
    assert symbol.error == "M" and symbol.mode == "alphanumeric"


def test_text_round_trip(credential: bytes) -> None:
    text = to_qr_text(credential)
    assert text.startswith("UC1:") and from_qr_text(text) == credential


def test_overlong_text_is_refused_before_decoding() -> None:
    with pytest.raises(MalformedCredential) as info:
        from_qr_text("UC1:" + "0" * 5000)
    assert info.value.reason == "too_large"


def test_png_decodes_with_zxing(longest_text: str) -> None:
    png = render_qr_png(longest_text)
    image = Image.open(io.BytesIO(png))
    found = zxingcpp.read_barcodes(image)
    assert [b.text for b in found] == [longest_text]
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode


def test_png_decodes_with_zbar(longest_text: str, tmp_path: Path) -> None:
    zbarimg = shutil.which("zbarimg")
    assert zbarimg, "zbar-tools must be installed (Debian zbar-tools)"
    path = tmp_path / "qr.png"
    path.write_bytes(render_qr_png(longest_text))
    out = subprocess.run([zbarimg, "--quiet", "--raw", str(path)], capture_output=True, check=True)
    assert out.stdout.decode("ascii").rstrip("\n") == longest_text


def test_png_size_fits_a_cr80_card(longest_text: str) -> None:
    image = Image.open(io.BytesIO(render_qr_png(longest_text, size_mm=20, dpi=300)))
    modules = 49 + 2 * 4  # version 8 + quiet zone
    assert image.size[0] == image.size[1] == modules * 4  # 4 dots per module at 300 dpi
    assert image.size[0] / 300 * 25.4 <= 20.0  # never larger than asked
    assert round(image.info["dpi"][0]) == 300


def _rasterise_segno_svg(svg: str, dots: int = 8) -> Image.Image:
    """Draw segno's single-path SVG ("M x y", "m dx dy", "h n" runs on module centre lines)."""
    path = re.search(r' d="([^"]+)"', svg)
    scale = re.search(r'scale\(([0-9.]+)\)', svg)
    width = re.search(r'viewBox="0 0 ([0-9.]+)', svg)
    assert path and scale and width
    modules = round(float(width[1]) / float(scale[1]))
    image = Image.new("1", (modules * dots, modules * dots), 1)
    x = y = 0.0
    for command, numbers in re.findall(r"([MmHh])([-0-9. ]+)", path[1]):
        values = [float(v) for v in numbers.split()]
        if command in "Mm":
            x, y = (values[0], values[1]) if command == "M" else (x + values[0], y + values[1])
        else:
            row = int(y - 0.5)
            image.paste(0, (int(x) * dots, row * dots, int(x + values[0]) * dots, (row + 1) * dots))
            x += values[0]
    return image


def test_svg_decodes_with_zxing(longest_text: str) -> None:
    image = _rasterise_segno_svg(render_qr_svg(longest_text))
    assert [b.text for b in zxingcpp.read_barcodes(image)] == [longest_text]


def test_svg_has_physical_size(longest_text: str) -> None:
    svg = render_qr_svg(longest_text, size_mm=18)
    assert 'width="18.0mm"' in svg and 'height="18.0mm"' in svg
    assert svg.startswith("<svg") and "<path" in svg
