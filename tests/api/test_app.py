"""The app factory and its routes: health, readiness, metrics, OpenAPI, whoami, clients, rate limits."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from fastapi import APIRouter

from cardsvc.api.app import api_routes, app_from_env, create_app
from cardsvc.api.problems import PROBLEM_BASE
from cardsvc.api.services import Services, in_memory_services
from cardsvc.config import Settings, get_settings
from cardsvc.errors import ConfigError
from cardsvc.registry.db import engine_for, upgrade_to_head
from cardsvc.verification.audit import verify_chain
from cardsvc.verification.ratelimit import RateLimit
from cardsvc.verification.roles import Role
from tests.api.conftest import Api, make_api


def test_healthz(api: Api) -> None:
    response = api.request("GET", "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def _with_probes(settings: Settings, **probes: object) -> Services:
    base = in_memory_services(settings)
    return Services(clients=base.clients, rate_limiter=base.rate_limiter, audit=base.audit,
                    readiness=probes)  # type: ignore[arg-type]


def _ok_sync() -> None:
    return None


async def _ok_async() -> None:
    return None


def _db_down() -> None:
    raise OSError("connection refused by 10.0.0.5 password=hunter2")


async def _key_store_locked() -> None:
    raise RuntimeError("locked")


async def _hangs() -> None:
    await asyncio.sleep(30)


def _readyz(settings: Settings, **probes: object):
    with asyncio.Runner() as runner:
        api = Api(create_app(settings, services=_with_probes(settings, **probes)), runner)
        return api.request("GET", "/readyz")


def test_readyz_runs_sync_and_async_probes(settings: Settings) -> None:
    response = _readyz(settings, db=_ok_sync, key_store=_ok_async)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "probes": ["db", "key_store"]}


def test_readyz_names_failed_probes_only(settings: Settings) -> None:
    response = _readyz(settings, db=_db_down, key_store=_key_store_locked, redis=_ok_async)
    assert response.status_code == 503
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "not_ready" and body["failed"] == ["db", "key_store"]
    assert "hunter2" not in response.text and "10.0.0.5" not in response.text


def test_readyz_times_out_a_hanging_probe(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from cardsvc.api.routes import health

    monkeypatch.setattr(health, "PROBE_TIMEOUT_S", 0.05)
    started = time.monotonic()
    response = _readyz(settings, slow=_hangs)
    assert response.status_code == 503 and response.json()["failed"] == ["slow"]
    assert time.monotonic() - started < 5


def test_redis_settings_add_a_redis_probe(tmp_path) -> None:
    services = in_memory_services(get_settings(env="test", data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0"))
    assert list(services.readiness) == ["redis"]
    asyncio.run(services.aclose())


def test_metrics_count_by_route_template_and_status(api: Api) -> None:
    token = api.token(Role.admin)
    api.request("GET", "/healthz")
    api.request("POST", "/v1/clients/0123456789ab/revoke", token=token)  # 404: unknown client
    api.request("GET", "/v1/whoami")  # 401
    api.request("GET", "/no/such/path")
    api.request("BREW", "/no/such/path")
    response = api.request("GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'cardsvc_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="/v1/clients/{client_id}/revoke",status="404"' in text
    assert 'route="/v1/whoami",status="401"' in text
    assert 'route="<unmatched>",status="404"' in text
    assert 'method="OTHER"' in text and "BREW" not in text
    assert "0123456789ab" not in text  # templates, never raw paths
    bucket = r'cardsvc_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="/healthz"\}'
    assert re.search(bucket, text)


def test_openapi_served_outside_production(api: Api) -> None:
    schema = api.request("GET", "/openapi.json").json()
    assert "/v1/whoami" in schema["paths"]
    assert "401" in schema["paths"]["/v1/whoami"]["get"]["responses"]
    assert api.request("GET", "/docs").status_code == 200


def test_openapi_off_in_production(tmp_path) -> None:
    settings = get_settings(env="production", key_passphrase="a real secret", data_dir=tmp_path)
    with make_api(settings) as api:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert api.request("GET", path).status_code == 404
        assert api.request("GET", "/healthz").status_code == 200


def test_whoami_reports_role_and_binding(api: Api) -> None:
    body = api.request("GET", "/v1/whoami", token=api.token(Role.partner)).json()
    assert body["role"] == "partner" and body["partner_base_id"] == "base-beidaihe"
    assert body["service_point_id"] is None and "token" not in body and "token_hash" not in body


def test_client_lifecycle_through_the_api_is_audited(api: Api) -> None:
    admin = api.token(Role.admin)
    created = api.request("POST", "/v1/clients", token=admin,
                          json={"label": "西城服务站 1", "role": "service_point", "service_point_id": "sp-1"})
    assert created.status_code == 201
    new = created.json()
    assert new["token"].startswith(f"cs_{new['client_id']}_")
    assert api.request("GET", "/v1/whoami", token=new["token"]).json()["service_point_id"] == "sp-1"
    listed = api.request("GET", "/v1/clients", token=admin).json()
    assert new["client_id"] in {c["client_id"] for c in listed}
    assert all("token" not in c for c in listed)
    revoked = api.request("POST", f"/v1/clients/{new['client_id']}/revoke", token=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert api.request("GET", "/v1/whoami", token=new["token"]).status_code == 401
    rows = api.run(api.services.audit.rows())
    assert [r.event.event_type for r in rows] == ["client.create", "client.revoke"]
    assert rows[1].event.subject == new["client_id"]
    verify_chain(rows)
    checkpoint = api.request("GET", "/v1/audit/checkpoint", token=admin).json()
    assert checkpoint["size"] == 2 and checkpoint["last_hash"] == rows[1].row_hash.hex()


def test_forbidden_create_records_nothing(api: Api) -> None:
    response = api.request("POST", "/v1/clients", token=api.token(Role.clerk),
                           json={"label": "x", "role": "admin"})
    assert response.status_code == 403
    assert len(api.run(api.services.clients.list())) == 1
    assert api.run(api.services.audit.rows()) == ()


def test_rate_limit_is_per_client_with_retry_after(settings: Settings) -> None:
    with make_api(settings, rate_limit=RateLimit(burst=3, per_second=0.25)) as api:
        first, second = api.token(Role.clerk), api.token(Role.clerk)
        statuses = [api.request("GET", "/v1/whoami", token=first).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = api.request("GET", "/v1/whoami", token=first)
        assert limited.headers["retry-after"] == "4"
        assert limited.json()["retry_after"] == 4
        assert limited.json()["type"] == PROBLEM_BASE + "rate_limited"
        assert api.request("GET", "/v1/whoami", token=second).status_code == 200  # own bucket
        assert api.request("GET", "/healthz").status_code == 200  # public: not limited


def test_forbidden_calls_spend_the_budget(settings: Settings) -> None:
    with make_api(settings, rate_limit=RateLimit(burst=2, per_second=0.1)) as api:
        clerk = api.token(Role.clerk)
        statuses = [api.request("GET", "/v1/clients", token=clerk).status_code for _ in range(3)]
        assert statuses == [403, 403, 429]


def test_a_route_without_policy_refuses_to_build(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from cardsvc.api.routes import clients

    extra = APIRouter()

    @extra.get("/v1/secret", name="secret_route")
    async def secret() -> dict[str, str]:
        return {}

    router = APIRouter()
    router.include_router(clients.router)
    router.include_router(extra)
    monkeypatch.setattr(clients, "router", router)
    with pytest.raises(ConfigError, match="secret_route"):
        create_app(settings)


def test_api_routes_lists_included_routes(api: Api) -> None:
    names = {r.name for r in api_routes(api.app)}
    assert {"healthz", "readyz", "metrics", "whoami", "clients_list", "clients_create", "clients_revoke",
            "audit_checkpoint", "verify_qr", "tap_page", "trust_bundle"} <= names


def test_app_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CARDSVC_ENV", "production")
    monkeypatch.setenv("CARDSVC_KEY_PASSPHRASE", "real")
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(tmp_path))
    engine = engine_for(get_settings())
    upgrade_to_head(engine)  # the served app is DB-backed: `cardsvc init` comes first
    engine.dispose()
    app = app_from_env()
    assert app.openapi_url is None and app.state.settings.env == "production"
