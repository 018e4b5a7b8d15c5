"""The production wiring: `db_services` from settings and a real file key store, `/readyz` probes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardsvc.api.services import db_services
from cardsvc.config import Settings, get_settings
from cardsvc.credential import Algorithm
from cardsvc.credential.filestore import FileKeyStore
from cardsvc.errors import ConfigError
from cardsvc.registry.db import engine_for, upgrade_to_head
from cardsvc.verification.roles import Role
from tests.api.conftest import Api


@pytest.fixture
def prod_settings(tmp_path: Path) -> Settings:
    return get_settings(env="test", data_dir=tmp_path, key_passphrase="test-passphrase-1")


def _store(settings: Settings) -> FileKeyStore:
    store = FileKeyStore(settings.key_store_dir, "test-passphrase-1", scrypt_n=2**10)
    now = dt.datetime.now(dt.UTC)
    store.create_issuer_key(Algorithm.eddsa, not_before=now - dt.timedelta(days=1))
    store.create_bundle_key(Algorithm.eddsa, not_before=now - dt.timedelta(days=1))
    return store


@pytest.fixture
def prod_api(prod_settings: Settings) -> Iterator[Api]:
    import asyncio

    from cardsvc.api.app import create_app

    engine = engine_for(prod_settings)
    upgrade_to_head(engine)
    engine.dispose()
    services = db_services(prod_settings, key_store=_store(prod_settings))
    with asyncio.Runner() as runner:
        api = Api(create_app(prod_settings, services=services), runner)
        yield api
        runner.run(api.client.aclose())
        runner.run(services.aclose())


def test_readyz_probes_db_and_key_store(prod_api: Api) -> None:
    response = prod_api.request("GET", "/readyz")
    assert response.status_code == 200 and response.json()["probes"] == ["db", "key_store"]


def test_clients_persist_in_the_database(prod_api: Api) -> None:
    token = prod_api.token(Role.admin)
    assert prod_api.request("GET", "/v1/whoami", token=token).json()["role"] == "admin"
    listed = prod_api.request("GET", "/v1/clients", token=token).json()
    assert len(listed) == 1
    checkpoint = prod_api.request("GET", "/v1/audit/checkpoint", token=token).json()
    assert checkpoint["size"] == 0  # clients made through the store directly are not audited


def test_trust_bundle_from_the_key_store(prod_api: Api) -> None:
    response = prod_api.request("GET", "/v1/trust-bundle", token=prod_api.token(Role.partner))
    assert response.status_code == 200 and response.headers["etag"].startswith('"')


def test_schema_must_be_at_head(prod_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="schema"):
        db_services(prod_settings, key_store=_store(prod_settings))


def _break_audit_append(monkeypatch: pytest.MonkeyPatch) -> None:
    from cardsvc.verification import store

    def broken(*_args: object, **_kw: object) -> None:
        raise OSError("audit table unavailable")

    monkeypatch.setattr(store, "append_event", broken)


def test_a_client_is_not_created_without_its_audit_row(prod_api: Api,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    token = prod_api.token(Role.admin)
    before = prod_api.request("GET", "/v1/clients", token=token).json()
    _break_audit_append(monkeypatch)
    response = prod_api.request("POST", "/v1/clients", token=token,
                                json={"label": "terminal 7", "role": "clerk"})
    assert response.status_code == 500 and "audit table" not in response.text
    monkeypatch.undo()
    assert prod_api.request("GET", "/v1/clients", token=token).json() == before


def test_a_client_is_not_revoked_without_its_audit_row(prod_api: Api,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    token = prod_api.token(Role.admin)
    created = prod_api.request("POST", "/v1/clients", token=token,
                               json={"label": "terminal 8", "role": "clerk"})
    assert created.status_code == 201
    victim = created.json()["client_id"]
    _break_audit_append(monkeypatch)
    assert prod_api.request("POST", f"/v1/clients/{victim}/revoke", token=token).status_code == 500
    monkeypatch.undo()
    assert prod_api.request("GET", "/v1/whoami", token=created.json()["token"]).status_code == 200
    assert prod_api.request("POST", f"/v1/clients/{victim}/revoke", token=token).json()["revoked"] is True
    assert prod_api.request("GET", "/v1/whoami", token=created.json()["token"]).status_code == 401
