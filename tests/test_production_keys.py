"""Production key commands on the file store: `pii-keys`, `card-keys`, and the settings that pick
the key store (file or PKCS#11) — the token itself is exercised in test_production_keys_hsm.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cardsvc.cli.main import build_app
from cardsvc.config import get_settings
from cardsvc.credential.filestore import FileKeyStore
from cardsvc.credential.keystore import open_key_store, pkcs11_config
from cardsvc.errors import ConfigError, KeyStoreError
from cardsvc.issuance.keys import MASTER_PREFIX, UID_INDEX_SECRET
from cardsvc.registry.db import make_engine
from tests.issuance.support import seed_members

NTAG_ROLES = {"ntag424_app_master", "ntag424_sdm_meta_read", "ntag424_sdm_file_read", "ntag424_data_read",
              "ntag424_reserve"}
PASSPHRASE = "production keys test passphrase"

Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CARDSVC_ENV", "production")
    monkeypatch.setenv("CARDSVC_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("CARDSVC_ISSUER", "XCGH")
    for name in ("MODULE", "TOKEN", "PIN"):
        monkeypatch.delenv(f"CARDSVC_PKCS11_{name}", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(build_app(), list(args), catch_exceptions=False)
        return result.exit_code, result.stdout

    return invoke


def _json(out: tuple[int, str]) -> Any:
    code, text = out
    assert code == 0, text
    return json.loads(text)


def _store() -> FileKeyStore:
    store = open_key_store(get_settings())
    assert isinstance(store, FileKeyStore)
    return store


def _all_secret_hex(store: FileKeyStore, names: list[str]) -> list[str]:
    return [store.secret(n, v)[1].hex() for n in names for v in store.secret_versions(n)]


def test_pii_keys_are_created_once_and_listed_without_material(cli: Cli) -> None:
    assert _json(cli("pii-keys", "create", "--json")) == {"pii/index": 1, "pii/data": 1}
    with pytest.raises(KeyStoreError, match="already exist; nothing created") as refused:
        cli("pii-keys", "create")
    assert "ID numbers unreadable" in refused.value.diagnostics()
    code, table = cli("pii-keys", "list")
    rows = _json(cli("pii-keys", "list", "--json"))
    assert [(r["name"], r["version"]) for r in rows] == [("pii/index", 1), ("pii/data", 1)]
    assert all(r["created"] for r in rows)
    secrets = _all_secret_hex(_store(), ["pii/index", "pii/data"])
    assert code == 0 and not any(s in table or s in json.dumps(rows) for s in secrets)


def test_pii_keys_refused_when_only_one_exists(cli: Cli) -> None:
    _store().ensure_secret("pii/index", 32)
    with pytest.raises(KeyStoreError, match="pii/index already exist"):
        cli("pii-keys", "create")
    assert _store().secret_versions("pii/data") == []


def test_card_keys_versions_for_every_installed_role(cli: Cli) -> None:
    first = _json(cli("card-keys", "create", "--version", "1", "--json"))
    roles = set(first["created"])
    assert NTAG_ROLES < roles and any(r.startswith("fmcos_") for r in roles)
    store = _store()
    assert store.secret_versions(UID_INDEX_SECRET) == [1]  # stations and API share it
    with pytest.raises(KeyStoreError, match="version 1 already exist"):
        cli("card-keys", "create", "--version", "1")
    with pytest.raises(KeyStoreError, match="does not follow"):
        cli("card-keys", "create", "--version", "3")
    assert _json(cli("card-keys", "create", "--version", "2", "--json"))["created"] == first["created"]
    listed = _json(cli("card-keys", "list", "--json"))
    assert listed["new_batches"] == {"fmcos-cpu": 2, "ntag424-dna": 2}
    versions = {(r["role"], r["version"]) for r in listed["keys"]}
    assert versions == {(r, v) for r in roles for v in (1, 2)}
    material = _all_secret_hex(store, [MASTER_PREFIX + r for r in roles])
    assert not any(m in json.dumps(listed) or m in cli("card-keys", "list")[1] for m in material)


def test_card_keys_for_one_profile_and_an_interrupted_run(cli: Cli) -> None:
    made = _json(cli("card-keys", "create", "--version", "1", "--profile", "ntag424-dna", "--json"))
    assert set(made["created"]) == NTAG_ROLES
    listed = _json(cli("card-keys", "list", "--json"))
    assert listed["new_batches"] == {"fmcos-cpu": None, "ntag424-dna": 1}
    _store().create_secret_version(MASTER_PREFIX + "ntag424_sdm_file_read", 16)  # run stopped here
    resumed = _json(cli("card-keys", "create", "--version", "2", "--profile", "ntag424-dna", "--json"))
    assert resumed["skipped"] == ["ntag424_sdm_file_read"]
    assert set(resumed["created"]) == NTAG_ROLES - {"ntag424_sdm_file_read"}
    with pytest.raises(ConfigError, match="no profile nope"):
        cli("card-keys", "list", "--profile", "nope")


def test_new_batches_take_the_new_version_old_batches_keep_theirs(cli: Cli, tmp_path: Path) -> None:
    code, out = cli("init")
    assert code == 0 and "cardsvc pii-keys create" in out and cli("keys", "init")[0] == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cardsvc.sqlite3'}")
    seed_members(engine, 2)
    engine.dispose()
    cli("card-keys", "create", "--version", "1")
    (old,) = _json(cli("batch", "create", "B1", "--org", "D01", "--json"))
    cli("card-keys", "create", "--version", "2")
    (new,) = _json(cli("batch", "create", "B2", "--org", "D01", "--json"))
    (pinned,) = _json(cli("batch", "create", "B3", "--org", "D01", "--key-version", "1", "--json"))
    rows = {r["label"]: r["key_version"] for r in _json(cli("batch", "list", "--json"))}
    assert (old["key_version"], new["key_version"], pinned["key_version"]) == (1, 2, 1)
    assert rows == {"B1": 1, "B2": 2, "B3": 1}


def test_init_dev_stays_refused_in_production(cli: Cli) -> None:
    with pytest.raises(ConfigError, match="refused outside CARDSVC_ENV=dev"):
        cli("init", "--dev")


def test_settings_choose_the_key_store(tmp_path: Path) -> None:
    assert pkcs11_config(get_settings(data_dir=tmp_path)) is None
    assert pkcs11_config(get_settings(data_dir=tmp_path, pkcs11_module="")) is None  # compose's ${X:-}
    with pytest.raises(ConfigError, match="CARDSVC_KEY_PASSPHRASE must be set"):
        get_settings(env="production", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="CARDSVC_PKCS11_TOKEN and CARDSVC_PKCS11_PIN"):
        get_settings(env="production", pkcs11_module=tmp_path / "lib.so", pkcs11_token="t")
    token = get_settings(env="production", pkcs11_module=tmp_path / "lib.so", pkcs11_token="t",
                         pkcs11_pin="4321")  # no file passphrase needed: the token holds the keys
    config = pkcs11_config(token)
    assert config is not None and (config.module, config.token_label, config.pin) == (
        tmp_path / "lib.so", "t", "4321")
    assert "4321" not in repr(token)
    with pytest.raises(KeyStoreError, match="not found"):
        open_key_store(token)  # the configured token is used, not the file store


def test_pin_only_from_the_environment(cli: Cli, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PIN is not set"):
        cli("keys", "list", "--pkcs11-module", str(tmp_path / "lib.so"), "--token", "t")
    code, _ = cli("keys", "list", "--pin", "1234")
    assert code == 2  # no such option: a PIN on the command line shows in ps and shell history
