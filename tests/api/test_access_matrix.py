"""The role × route matrix, generated from the app's own routes and the permission table.

For every API route and method: no token → 401 (with WWW-Authenticate), a revoked token → 401, each
role → 2xx when ROUTE_POLICIES allows it and 403 otherwise; public routes answer 200 to everyone.
No response body, for anyone, contains an 18-character ID number. A route added without a sample
request here, or without a policy in the table, fails this file (and the app factory).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from cardsvc.api.app import api_routes, create_app
from cardsvc.config import Settings, get_settings
from cardsvc.verification.recuperation import CheckinRequest, check_in
from cardsvc.verification.roles import ROUTE_POLICIES, Role
from cardsvc.verification.tokens import ClientRecord
from tests.api.conftest import Api
from tests.api.verify_support import make_db_api, newest_client_id, world_of
from tests.verification.world import FMCOS, make_world, sqlite_url


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[Api]:
    """The matrix runs on the DB-backed services (every route works, not only the in-memory ones)."""
    with make_world(sqlite_url(tmp_path)) as world, make_db_api(settings, world) as made:
        yield made

# An ID number as a token of its own (hex hashes of zeros are not ID numbers).
ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
NO_TOKEN, REVOKED = "no_token", "revoked_token"
CALLERS = [NO_TOKEN, REVOKED, *(r.value for r in Role)]


def _new_client_id(api: Api) -> dict[str, Any]:
    token = api.token(Role.clerk)
    return {"path": {"client_id": token.split("_")[1]}}


def _qr(api: Api) -> str:
    return world_of(api).issue_card().qr


def _sun_params(api: Api) -> dict[str, str]:
    world = world_of(api)
    return dict(parse_qsl(urlsplit(world.tap_url(world.issue_card())).query))


def _card_answer(api: Api) -> dict[str, Any]:
    world = world_of(api)
    card = world.issue_card(profile=FMCOS)
    client_id = newest_client_id(api)
    nonce = world.db.transact(lambda s: world.svc.create_challenge(s, client_id=client_id)).nonce
    return {"json": {"challenge": nonce.hex(), "uid": card.uid.hex(), "kind": "internal_auth",
                     "payload": world.internal_auth(card, nonce).hex(), "credential": card.credential.hex()}}


def _programme(api: Api) -> str:
    return world_of(api).programme(quota=100)


def _checkin_id(api: Api) -> dict[str, Any]:
    world = world_of(api)
    code, card = _programme(api), world.issue_card()
    admin = ClientRecord(client_id="a0a0a0a0a0a0", label="t", role=Role.admin, token_hash=b"x" * 32,
                         created_at=world.clock())
    request = CheckinRequest(code, card.qr, "k-00000001")
    result = world.db.transact(lambda s: check_in(s, world.svc, admin, request))
    return {"path": {"checkin_id": result.checkin_id}}


# route name -> how to build a valid request (path, query parameters, headers, JSON body) for it.
SAMPLES: dict[str, Callable[[Api], dict[str, Any]]] = {
    "healthz": lambda _: {},
    "readyz": lambda _: {},
    "metrics": lambda _: {},
    "whoami": lambda _: {},
    "clients_list": lambda _: {},
    "clients_create": lambda _: {"json": {"label": "desk 3", "role": "partner", "partner_base_id": "b-1"}},
    "clients_revoke": _new_client_id,
    "audit_checkpoint": lambda _: {},
    "tap_page": lambda api: {"params": _sun_params(api)},
    "verify_qr": lambda api: {"json": {"qr": _qr(api)}},
    "verify_sun_json": lambda api: {"params": _sun_params(api)},
    "challenges_create": lambda _: {},
    "verify_card": _card_answer,
    "trust_bundle": lambda _: {},
    "service_records_create": lambda api: {"json": {"item": "consultation", "qr": _qr(api),
                                                    "service_point": "sp-xicheng-01"}},
    "service_records_stats": lambda _: {},
    "checkins_create": lambda api: {"json": {"programme": _programme(api), "qr": _qr(api)},
                                    "headers": {"Idempotency-Key": "matrix-0001"}},
    "checkins_sync": lambda api: {"json": {"programme": _programme(api), "items": [
        {"idempotency_key": "offline-0001", "qr": _qr(api), "checked_in_at": "2026-11-24T08:00:00Z"}]}},
    "checkouts_create": _checkin_id,
    "eligibility_list": lambda api: {"path": {"programme": _programme(api)}},
}


def _routes() -> list[tuple[str, str, str]]:
    app = create_app(get_settings(env="test"))
    return sorted((route.name, method, route.path) for route in api_routes(app) for method in route.methods)


ROUTES = _routes()


def test_every_route_has_a_sample_and_a_policy() -> None:
    names = {name for name, _, _ in ROUTES}
    assert names <= set(SAMPLES), names - set(SAMPLES)
    assert names <= set(ROUTE_POLICIES), names - set(ROUTE_POLICIES)
    assert {"whoami", "clients_create", "healthz"} <= names


def _token(api: Api, caller: str) -> str | None:
    if caller == NO_TOKEN:
        return None
    if caller == REVOKED:
        return api.token(Role.admin, revoked=True)
    return api.token(Role(caller))


def _expected(name: str, caller: str) -> range:
    policy = ROUTE_POLICIES[name]
    if policy.public:
        return range(200, 201)
    if caller in (NO_TOKEN, REVOKED):
        return range(401, 402)
    return range(200, 300) if Role(caller) in policy.roles else range(403, 404)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("name", "method", "path"), ROUTES, ids=[f"{n}-{m}" for n, m, _ in ROUTES])
def test_access_matrix(api: Api, name: str, method: str, path: str, caller: str) -> None:
    token = _token(api, caller)  # before the sample: a reader-tap challenge is bound to this client
    sample = SAMPLES[name](api)
    url = path.format(**sample.get("path", {}))
    response = api.request(method, url, token=token, json=sample.get("json"), params=sample.get("params"),
                           headers=sample.get("headers", {}))
    assert response.status_code in _expected(name, caller), response.text
    if caller != Role.admin.value:  # only admin ever gets a full ID number
        assert not ID_SHAPE.search(response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith('Bearer realm="cardsvc"')
