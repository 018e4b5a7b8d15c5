"""`cardsvc pii-keys`: create the PII keys once (production key ceremony), list their versions.

``pii/index`` (HMAC-SHA256 blind index) finds members by ID number: lose it and no lookup by ID
number or phone works any more. ``pii/data`` (AES-256-GCM, versioned) encrypts ID numbers and
phones: lose a version and every row sealed under it is unreadable. Neither can be re-created —
so ``create`` refuses to run when either exists, and the key store must be backed up right after.
New ``pii/data`` versions come from ``cardsvc members rekey``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cardsvc.cli.keys import Pkcs11Module, Pkcs11Token, open_store
from cardsvc.cli.output import console, emit_json, emit_table
from cardsvc.credential.keystore import KeyStore
from cardsvc.errors import KeyStoreError
from cardsvc.registry.pii import DATA_KEY_NAME, INDEX_KEY_NAME, KEY_SIZE

app = typer.Typer(help="PII keys (pii/data, pii/index): create once, list.", no_args_is_help=True)
PII_KEYS = (INDEX_KEY_NAME, DATA_KEY_NAME)


def register(app_root: typer.Typer) -> None:
    """Add `cardsvc pii-keys …` to the root app."""
    app_root.add_typer(app, name="pii-keys")


def create_pii_keys(store: KeyStore) -> dict[str, int]:
    """Create ``pii/index`` and ``pii/data`` v1; refuses when either already exists."""
    present = [name for name in PII_KEYS if store.secret_versions(name)]
    if present:
        raise KeyStoreError(f"{' and '.join(present)} already exist; nothing created",
                            hint="replacing pii/index breaks every lookup and replacing pii/data makes "
                                 "ID numbers unreadable; `cardsvc members rekey` adds a data-key version")
    return {name: store.create_secret_version(name, KEY_SIZE) for name in PII_KEYS}


@app.command("create")
def create(as_json: Annotated[bool, typer.Option("--json")] = False,
           pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Create pii/index and pii/data (refused if either exists). Back the key store up at once."""
    made = create_pii_keys(open_store(pkcs11_module, token))
    if as_json:
        emit_json(made)
        return
    console.print(", ".join(f"{name} v{version}" for name, version in made.items()) + " created")
    console.print("back up the key store now: without pii/index no member is found by ID number, "
                  "without pii/data no ID number can be read")


@app.command("list")
def list_versions(as_json: Annotated[bool, typer.Option("--json")] = False,
                  pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Versions of the PII keys and when each was created (never key material)."""
    store = open_store(pkcs11_module, token)
    rows = [{"name": info.name, "version": info.version,
             "created": info.created.isoformat() if info.created else ""}
            for name in PII_KEYS for info in store.secret_info(name)]
    if as_json:
        emit_json(rows)
    else:
        emit_table("PII keys", ["name", "version", "created"], rows)
