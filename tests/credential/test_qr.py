"""QR text and rendering: version ≤ 9 at ECC M, PNGs decode back exactly with zxing-cpp and zbar."""

from __future__ import annotations

import io
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

from .conftest import make_claims


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


def test_svg_has_physical_size(longest_text: str) -> None:
    svg = render_qr_svg(longest_text, size_mm=18)
    assert 'width="18.0mm"' in svg and 'height="18.0mm"' in svg
    assert svg.startswith("<svg") and "<path" in svg
