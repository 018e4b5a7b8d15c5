"""`cardsvc verify`: check a credential (QR text or QR image) offline against a trust bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cardsvc.cli.output import console, emit_json
from cardsvc.config import get_settings
from cardsvc.credential import (
    OfflineVerifier,
    TrustAnchor,
    VerificationResult,
    VerificationStatus,
    open_key_store,
)
from cardsvc.errors import BundleError, ConfigError, MalformedCredential

# Outcomes, not errors: 0 OK, 7 NOK (same code as CredentialVerificationError), 13 CHECK.
OUTCOME_EXIT = {VerificationStatus.ok: 0, VerificationStatus.nok: 7, VerificationStatus.check: 13}


def register(app: typer.Typer) -> None:
    """Add `cardsvc verify` to the root app."""
    app.command("verify")(verify)


def verify(
    qr_text: Annotated[str | None, typer.Argument(help="the QR text (UC1:…)")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="PNG/JPEG image with the QR")] = None,
    bundle: Annotated[Path, typer.Option("--bundle", help="trust bundle file")] = Path("bundle.cbor"),
    anchor: Annotated[Path | None, typer.Option(
        "--anchor", envvar="CARDSVC_TRUST_ANCHOR",
        help="trust anchor (COSE_Key); default: the bundle keys of the local key store")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify a credential offline: prints OK / NOK (reason) / CHECK and the checklist."""
    text = _credential_text(qr_text, file)
    verifier = OfflineVerifier.from_bundle_bytes(_read(bundle), _anchors(anchor))
    result = verifier.verify(text)
    if as_json:
        emit_json(result_json(result))
    else:
        _print(result)
    raise typer.Exit(OUTCOME_EXIT[result.status])


def result_json(result: VerificationResult) -> dict[str, object]:
    claims = result.claims
    return {
        "status": result.status.value.upper(), "reason": result.reason,
        "card_number": result.card_number,
        "claims": None if claims is None else {
            "issuer": claims.issuer, "card_number": claims.card_number,
            "issued_at": claims.issued_at.isoformat(), "expires_at": claims.expires_at.isoformat(),
            "profile": claims.profile, "key_version": claims.key_version,
            "categories": list(claims.categories), "version": claims.version,
        },
        "checks": [{"number": c.number, "name": c.name, "passed": c.passed} for c in result.checks],
    }


def _print(result: VerificationResult) -> None:
    for check in result.checks:
        mark = "[green]✓[/]" if check.passed else "[red]✗[/]"
        console.print(f"{check.number:>2} {mark} {check.name}")
    status = result.status.value.upper()
    reason = f" ({result.reason})" if result.reason else ""
    card = f" card {result.card_number}" if result.card_number else ""
    colour = {"OK": "green", "NOK": "red", "CHECK": "yellow"}[status]
    console.print(f"[bold {colour}]{status}[/]{reason}{card}")


def _anchors(path: Path | None) -> list[TrustAnchor]:
    if path is not None:
        return [TrustAnchor.from_cose_key(_read(path))]
    keys = open_key_store(get_settings()).bundle_keys()
    if not keys:
        raise ConfigError("no trust anchor: pass --anchor FILE (from `cardsvc trust anchor`)")
    return [TrustAnchor.from_key(k) for k in keys]


def _credential_text(qr_text: str | None, file: Path | None) -> str:
    if (qr_text is None) == (file is None):
        raise ConfigError("give either the QR text or --file IMAGE")
    if qr_text is not None:
        return qr_text.strip()
    assert file is not None  # noqa: S101 - checked above
    return decode_qr_image(file)


def decode_qr_image(path: Path) -> str:
    """The text of the one QR code in an image (zxing-cpp)."""
    try:
        import zxingcpp
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ConfigError("reading QR images needs the zxing-cpp package") from None
    try:
        with Image.open(path) as image:
            found = [b for b in zxingcpp.read_barcodes(image)
                     if b.format == zxingcpp.BarcodeFormat.QRCode]
    except (OSError, UnidentifiedImageError) as exc:
        raise ConfigError(f"cannot read image {path}: {exc}") from None
    if len(found) != 1:
        raise MalformedCredential(f"expected one QR code in {path}, found {len(found)}",
                                  reason="qr_image")
    return str(found[0].text)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}", reason="file_missing") from None
