"""`cardsvc trust` commands: export a signed trust bundle and the trust anchor for partners."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from cardsvc.cli.keys import Pkcs11Module, Pkcs11Token, open_store, parse_duration
from cardsvc.cli.output import console, emit_json, emit_table
from cardsvc.config import Settings, get_settings
from cardsvc.credential import TrustAnchor, TrustBundle, build_trust_bundle
from cardsvc.credential.keystore import signing_key
from cardsvc.errors import ConfigError

app = typer.Typer(help="Trust bundles for offline verifiers.", no_args_is_help=True)


def register(app_root: typer.Typer) -> None:
    """Add `cardsvc trust …` to the root app."""
    app_root.add_typer(app, name="trust")


def registry_revocations(settings: Settings) -> list[str]:
    """Issued cards the registry marks revoked, lost or suspended."""
    from cardsvc.registry.card_repo import revoked_card_numbers
    from cardsvc.registry.db import engine_for, require_head, session_factory

    engine = engine_for(settings)
    try:
        require_head(engine)
        with session_factory(engine)() as session:
            return revoked_card_numbers(session)
    finally:
        engine.dispose()


def read_card_numbers(path: Path | None) -> list[str]:
    """Card numbers, one per line (blank lines and ``#`` comments ignored)."""
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


@app.command("export")
def export(out: Annotated[Path, typer.Option("--out", help="bundle file to write")],
           valid: Annotated[str, typer.Option("--valid", help="lifetime, e.g. 7d")] = "7d",
           revoked: Annotated[Path | None, typer.Option(
               "--revoked", help="file of revoked card numbers, one per line")] = None,
           sequence: Annotated[int | None, typer.Option(
               help="sequence number (default: issue time in seconds)")] = None,
           from_db: Annotated[bool, typer.Option(
               "--db/--no-db", help="include revoked/lost/suspended cards from the registry")] = True,
           pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Sign and write a trust bundle: issuer keys, revoked cards, sequence, validity."""
    settings = get_settings()
    store = open_store(pkcs11_module, token)
    now = datetime.now(UTC).replace(microsecond=0)
    numbers = read_card_numbers(revoked) + (registry_revocations(settings) if from_db else [])
    raw = build_trust_bundle(
        store.bundle_signer(now=now), store.issuer_keys(), numbers,
        int(now.timestamp()) if sequence is None else sequence, now, now + parse_duration(valid),
        issuer=settings.issuer,
    )
    out.write_bytes(raw)
    console.print(f"wrote {out} ({len(raw)} bytes, {len(set(numbers))} revoked cards), "
                  f"valid until {now + parse_duration(valid)}")


@app.command("anchor")
def anchor(out: Annotated[Path, typer.Option("--out", help="COSE_Key file to write")],
           pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Write the bundle key's public key (COSE_Key) — give it to partners out of band."""
    store = open_store(pkcs11_module, token)
    key = signing_key(store.bundle_keys(), datetime.now(UTC))
    out.write_bytes(TrustAnchor.from_key(key).to_cose_key())
    console.print(f"wrote {out}: bundle key {key.kid.hex()} ({key.alg.label})")


@app.command("show")
def show(bundle: Annotated[Path, typer.Argument(help="trust bundle file")],
         anchor_file: Annotated[Path, typer.Option("--anchor", help="trust anchor (COSE_Key)")],
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Verify a bundle against its anchor and print what it holds (no card numbers)."""
    loaded = TrustBundle.load(bundle.read_bytes(), TrustAnchor.from_cose_key(anchor_file.read_bytes()))
    now = datetime.now(UTC)
    keys = [{"kid": k.kid.hex(), "alg": k.alg.label, "state": str(k.state),
             "not_before": k.not_before.isoformat(),
             "not_after": k.not_after.isoformat() if k.not_after else None} for k in loaded.keys]
    summary: dict[str, object] = {
        "sequence": loaded.sequence, "issuer": loaded.issuer,
        "issued_at": loaded.issued_at.isoformat(), "expires_at": loaded.expires_at.isoformat(),
        "fresh": loaded.is_fresh(now), "revoked_cards": len(loaded.revoked), "keys": keys,
    }
    if as_json:
        emit_json(summary)
        return
    for name in ("sequence", "issuer", "issued_at", "expires_at", "fresh", "revoked_cards"):
        console.print(f"{name}: {summary[name]}")
    emit_table("issuer keys", ["kid", "alg", "state", "not_before", "not_after"], keys)
