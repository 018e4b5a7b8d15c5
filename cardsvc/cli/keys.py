"""`cardsvc keys` commands: init, list, rotate, retire, revoke (issuer and bundle signing keys)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from cardsvc.cli.output import console, emit_json, emit_table
from cardsvc.config import get_settings
from cardsvc.credential import Algorithm, IssuerKey, KeyStore, Pkcs11Config, open_key_store
from cardsvc.errors import ConfigError, KeyStoreError

app = typer.Typer(help="Issuer and bundle signing keys.", no_args_is_help=True)

Pkcs11Module = Annotated[Path | None, typer.Option(
    "--pkcs11-module", envvar="CARDSVC_PKCS11_MODULE", help="PKCS#11 module (.so); default: file store")]
Pkcs11Token = Annotated[str, typer.Option(
    "--token", envvar="CARDSVC_PKCS11_TOKEN", help="PKCS#11 token label")]
AlgOption = Annotated[str, typer.Option("--alg", help="EdDSA (default) or ES256")]
_DURATION = re.compile(r"(\d+)([dhm]?)")


def register(app_root: typer.Typer) -> None:
    """Add `cardsvc keys …` to the root app."""
    app_root.add_typer(app, name="keys")


def open_store(module: Path | None = None, token: str = "") -> KeyStore:
    """The key store the CLI works on: the configured one (``open_key_store``), or the PKCS#11
    token named by ``--pkcs11-module/--token``. The PIN only ever comes from ``CARDSVC_PKCS11_PIN``
    (a PIN on the command line would show in ``ps`` and shell history)."""
    settings = get_settings()
    if module is None:
        return open_key_store(settings)
    pin = settings.pkcs11_pin.get_secret_value()
    if not pin:
        raise ConfigError("the PKCS#11 user PIN is not set", hint="export CARDSVC_PKCS11_PIN")
    return open_key_store(settings, pkcs11=Pkcs11Config(module, token or settings.pkcs11_token, pin))


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m`` or a bare number of days."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ConfigError(f"not a duration: {text!r} (use e.g. 7d, 12h, 30m)")
    amount, unit = int(match.group(1)), match.group(2) or "d"
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount),
            "m": timedelta(minutes=amount)}[unit]


def _algorithm(text: str) -> Algorithm:
    try:
        return Algorithm.parse(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _kid(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise KeyStoreError(f"key id must be hex, got {text!r}") from None


@app.command("init")
def init_keys(alg: AlgOption = "EdDSA", bundle_alg: Annotated[str, typer.Option(
        "--bundle-alg", help="bundle key algorithm")] = "EdDSA",
        pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Create the first issuer key and the bundle key."""
    store = open_store(pkcs11_module, token)
    if store.issuer_keys():
        raise KeyStoreError("the key store already has issuer keys",
                            hint="use `cardsvc keys rotate` to add a new one")
    now = datetime.now(UTC)
    issuer = store.create_issuer_key(_algorithm(alg), not_before=now)
    bundle = store.create_bundle_key(_algorithm(bundle_alg), not_before=now)
    console.print(f"issuer key {issuer.kid.hex()} ({issuer.alg.label}), "
                  f"bundle key {bundle.kid.hex()} ({bundle.alg.label})")


@app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json")] = False,
              pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """List signing keys with their state and window."""
    store = open_store(pkcs11_module, token)
    now = datetime.now(UTC)
    rows = [_row("issuer", k, now) for k in store.issuer_keys()]
    rows += [_row("bundle", k, now) for k in store.bundle_keys()]
    if as_json:
        emit_json(rows)
    else:
        emit_table("signing keys", ["role", "kid", "alg", "state", "signs_now", "not_before",
                                    "not_after"], rows)


def _row(role: str, key: IssuerKey, now: datetime) -> dict[str, object]:
    return {
        "role": role, "kid": key.kid.hex(), "alg": key.alg.label, "state": str(key.state),
        "signs_now": key.may_sign_at(now), "not_before": key.not_before.isoformat(),
        "not_after": key.not_after.isoformat() if key.not_after else "",
    }


@app.command("rotate")
def rotate(alg: AlgOption = "EdDSA",
           overlap: Annotated[str, typer.Option(help="pre-publication window, e.g. 7d")] = "7d",
           pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Add a new issuer key that starts signing after OVERLAP; the old key stops then."""
    store = open_store(pkcs11_module, token)
    key = store.rotate_issuer_key(_algorithm(alg), now=datetime.now(UTC),
                                  overlap=parse_duration(overlap))
    console.print(f"new issuer key {key.kid.hex()} signs from {key.not_before.isoformat()}; "
                  "export a new trust bundle now")


@app.command("retire")
def retire(kid: Annotated[str, typer.Argument(help="key id (hex)")],
           pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Stop a key signing now; credentials it issued before stay valid (verify-only)."""
    key = open_store(pkcs11_module, token).retire_issuer_key(_kid(kid), at=datetime.now(UTC))
    console.print(f"key {key.kid.hex()} retired; cut-off {key.not_after}")


@app.command("revoke")
def revoke(kid: Annotated[str, typer.Argument(help="key id (hex)")],
           pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Revoke a compromised key: nothing it signed verifies any more."""
    key = open_store(pkcs11_module, token).revoke_issuer_key(_kid(kid))
    console.print(f"key {key.kid.hex()} revoked; export a new trust bundle now")
