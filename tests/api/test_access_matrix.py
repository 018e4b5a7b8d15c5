"""The role × route matrix, generated from the app's own routes and the permission table.

For every API route and method: no token → 401 (with WWW-Authenticate), a revoked token → 401, each
role → 2xx when ROUTE_POLICIES allows it and 403 otherwise; public routes answer 200 to everyone.
No response body, for anyone, contains an 18-character ID number. A route added without a sample
request here, or without a policy in the table, fails this file (and the app factory).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from cardsvc.api.app import api_routes, create_app
from cardsvc.config import get_settings
from cardsvc.verification.roles import ROUTE_POLICIES, Role
from tests.api.conftest import Api

# An ID number as a token of its own (hex hashes of zeros are not ID numbers).
ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
NO_TOKEN, REVOKED = "no_token", "revoked_token"
CALLERS = [NO_TOKEN, REVOKED, *(r.value for r in Role)]


def _new_client_id(api: Api) -> dict[str, Any]:
    token = api.token(Role.clerk)
    return {"path": {"client_id": token.split("_")[1]}}


# route name -> how to build a valid request (path parameters, JSON body) for it.
SAMPLES: dict[str, Callable[[Api], dict[str, Any]]] = {
    "healthz": lambda _: {},
    "readyz": lambda _: {},
    "metrics": lambda _: {},
    "whoami": lambda _: {},
    "clients_list": lambda _: {},
    "clients_create": lambda _: {"json": {"label": "desk 3", "role": "partner", "partner_base_id": "b-1"}},
    "clients_revoke": _new_client_id,
    "audit_checkpoint": lambda _: {},
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
    sample = SAMPLES[name](api)
    url = path.format(**sample.get("path", {}))
    response = api.request(method, url, token=_token(api, caller), json=sample.get("json"))
    assert response.status_code in _expected(name, caller), response.text
    assert not ID_SHAPE.search(response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith('Bearer realm="cardsvc"')
