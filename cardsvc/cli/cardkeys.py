"""`cardsvc card-keys`: create a new version of the card master keys, list versions (never keys).

Card master keys are the key store's named secrets ``card-master/<role>``: every key slot of a
firmware profile names the role its per-card key is diversified from (NXP AN10922). A *version*
is one full set of roles; a batch pins the version it was created with and every card row keeps
it, so old cards keep verifying after a new version exists. New batches take the newest version
every role of their profile has (``batch create --key-version N`` pins an older one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

import typer

from cardsvc.cli.keys import Pkcs11Module, Pkcs11Token, open_store
from cardsvc.cli.output import console, emit_json, emit_table
from cardsvc.config import get_settings
from cardsvc.credential.keystore import KeyStore, SecretVersion
from cardsvc.errors import ConfigError, KeyStoreError
from cardsvc.issuance.keys import (
    MASTER_KEY_SIZE,
    MASTER_PREFIX,
    current_key_version,
    ensure_uid_index,
    master_roles,
)
from cardsvc.profiles import Profile, load_profiles

app = typer.Typer(help="Card master keys (AN10922): versions for new batches.", no_args_is_help=True)
MAX_VERSION = 255  # NTAG 424 DNA key versions are one byte; 0 means "factory key"
ProfileOption = Annotated[list[str] | None, typer.Option(
    "--profile", help="only this firmware profile's roles (repeat for several); default: all installed")]


def register(app_root: typer.Typer) -> None:
    """Add `cardsvc card-keys …` to the root app."""
    app_root.add_typer(app, name="card-keys")


def installed_profiles(names: Iterable[str] | None = None) -> dict[str, Profile]:
    """The installed firmware profiles, or the named ones (unknown names refused)."""
    profiles = load_profiles(get_settings().effective_profiles_dir)
    if not names:
        return profiles
    unknown = sorted(set(names) - set(profiles))
    if unknown:
        raise ConfigError(f"no profile {', '.join(unknown)}; installed: {', '.join(sorted(profiles))}")
    return {name: profiles[name] for name in names}


def roles_of(profiles: Mapping[str, Profile]) -> dict[str, list[str]]:
    """Master-key role → the profiles that use it, in a stable order."""
    users: dict[str, list[str]] = {}
    for name in sorted(profiles):
        for role in master_roles(profiles[name]):
            users.setdefault(role, []).append(name)
    return dict(sorted(users.items()))


def missing_roles(store: KeyStore, roles: Iterable[str], version: int) -> list[str]:
    """Roles still to be given ``version``; refuses a version that exists or skips one.

    A role whose newest version is already ``version`` was done by an interrupted earlier run and
    is skipped; a version already complete for every role is refused (nothing is overwritten).
    """
    if not 1 <= version <= MAX_VERSION:
        raise KeyStoreError(f"card key versions are 1..{MAX_VERSION}, got {version}")
    newest = {role: max(store.secret_versions(MASTER_PREFIX + role), default=0) for role in roles}
    wrong = {role: v for role, v in newest.items() if v not in (version - 1, version)}
    if wrong:
        listed = ", ".join(f"{role} v{v}" for role, v in wrong.items())
        raise KeyStoreError(f"version {version} does not follow the newest versions ({listed})",
                            hint="`cardsvc card-keys list` shows them; use --profile for a new profile")
    todo = [role for role, v in newest.items() if v == version - 1]
    if not todo:
        raise KeyStoreError(f"card master keys of version {version} already exist; nothing overwritten")
    return todo


def create_version(store: KeyStore, roles: Iterable[str], version: int) -> list[str]:
    """Add ``version`` of each role's master key (generated in the store); returns the roles made."""
    todo = missing_roles(store, roles, version)
    for role in todo:
        made = store.create_secret_version(MASTER_PREFIX + role, MASTER_KEY_SIZE)
        if made != version:
            raise KeyStoreError(f"{MASTER_PREFIX}{role} got version {made}, not {version}: "
                                "another process changed the key store")
    ensure_uid_index(store)
    return todo


@app.command("create")
def create(version: Annotated[int, typer.Option("--version", help="the new version number")],
           profile: ProfileOption = None, as_json: Annotated[bool, typer.Option("--json")] = False,
           pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Create master keys of VERSION for every role of the installed profiles (and the UID
    index key if absent). New batches use the newest complete version; old cards keep theirs."""
    roles = roles_of(installed_profiles(profile))
    store = open_store(pkcs11_module, token)
    made = create_version(store, roles, version)
    result = {"version": version, "created": made, "skipped": [r for r in roles if r not in made]}
    if as_json:
        emit_json(result)
        return
    console.print(f"card master keys v{version} created for {', '.join(made)}")
    console.print("back up the key store now; new batches use this version")


@app.command("list")
def list_versions(profile: ProfileOption = None,
                  as_json: Annotated[bool, typer.Option("--json")] = False,
                  pkcs11_module: Pkcs11Module = None, token: Pkcs11Token = "") -> None:
    """Versions of every master-key role, when each was created, and the version new batches of
    each profile take. Never prints key material."""
    profiles = installed_profiles(profile)
    store = open_store(pkcs11_module, token)
    rows = [_row(info, users) for role, users in roles_of(profiles).items()
            for info in store.secret_info(MASTER_PREFIX + role)]
    defaults = {name: _default_version(store, p) for name, p in sorted(profiles.items())}
    if as_json:
        emit_json({"keys": rows, "new_batches": defaults})
        return
    emit_table("card master keys", ["role", "version", "created", "profiles"], rows)
    emit_table("new batches use", ["profile", "version"],
               [{"profile": n, "version": v or "none"} for n, v in defaults.items()])


def _row(info: SecretVersion, users: list[str]) -> dict[str, object]:
    return {"role": info.name.removeprefix(MASTER_PREFIX), "version": info.version,
            "created": info.created.isoformat() if info.created else "", "profiles": ",".join(users)}


def _default_version(store: KeyStore, profile: Profile) -> int | None:
    try:
        return current_key_version(store, profile)
    except KeyStoreError:
        return None
