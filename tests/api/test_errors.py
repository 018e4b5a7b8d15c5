"""problem+json errors, the request guard (size, content type), and the opaque 500."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence

import pytest

from cardsvc import errors
from cardsvc.api.app import create_app
from cardsvc.api.problems import HTTP_STATUS, PROBLEM_BASE, status_for
from cardsvc.api.services import Services
from cardsvc.config import Settings
from cardsvc.verification.audit import InMemoryAuditSink
from cardsvc.verification.ratelimit import InProcessRateLimiter, RateLimit
from cardsvc.verification.roles import Role
from cardsvc.verification.tokens import ClientRecord
from tests.api.conftest import Api

VALID_TOKEN = "cs_0123456789ab_" + "A" * 43


def test_status_table() -> None:
    assert status_for(errors.NotFound("x")) == 404
    assert status_for(errors.Conflict("x")) == 409
    assert status_for(errors.InvalidRecord("x", field="f")) == 422
    assert status_for(errors.MalformedCredential("x")) == 422
    assert status_for(errors.RateLimited(retry_after=3)) == 429
    # a failed credential is a NOK outcome built by verify routes, never an HTTP error
    assert status_for(errors.CredentialVerificationError("x", reason="sig")) is None
    assert status_for(errors.KeyStoreError("x")) is None
    assert len({cls for cls, _ in HTTP_STATUS}) == len(HTTP_STATUS)


def test_invalid_token_gets_invalid_token_challenge(api: Api) -> None:
    response = api.request("GET", "/v1/whoami", token=VALID_TOKEN)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="cardsvc", error="invalid_token"'
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "authentication_required"
    assert body["title"] == "Unauthorized" and body["status"] == 401


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token abc"])
def test_non_bearer_authorization_is_401(api: Api, header: str) -> None:
    response = api.request("GET", "/v1/whoami", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"] == "missing bearer token"


def test_scheme_is_case_insensitive(api: Api) -> None:
    token = api.token(Role.clerk)
    response = api.request("GET", "/v1/whoami", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200 and response.json()["role"] == "clerk"


def test_oversized_body_is_413_by_content_length(api: Api) -> None:
    token = api.token(Role.admin)
    body = b'{"label": "' + b"x" * (64 * 1024) + b'", "role": "clerk"}'
    response = api.request("POST", "/v1/clients", token=token, content=body,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["type"] == PROBLEM_BASE + "payload_too_large"
    assert len(api.run(api.services.clients.list())) == 1  # nothing created


def test_oversized_chunked_body_is_413(api: Api) -> None:
    token = api.token(Role.admin)

    async def chunks():  # no Content-Length: a streamed body
        for _ in range(80):
            yield b"x" * 1024

    response = api.request("POST", "/v1/clients", token=token, content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_body_is_415(api: Api, content_type: str | None) -> None:
    token = api.token(Role.admin)
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.request("POST", "/v1/clients", token=token, content=b'{"label":"a","role":"clerk"}',
                           headers=headers)
    assert response.status_code == 415
    assert response.json()["type"] == PROBLEM_BASE + "unsupported_media_type"


def test_json_variants_are_accepted(api: Api) -> None:
    token = api.token(Role.admin)
    response = api.request("POST", "/v1/clients", token=token, content=b'{"label":"a","role":"clerk"}',
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201


def test_malformed_json_is_422_without_echo(api: Api) -> None:
    token = api.token(Role.admin)
    response = api.request("POST", "/v1/clients", token=token, content=b'{"label": "11010519491231002X",',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "11010519491231002X" not in response.text


def test_schema_violation_is_422_with_locations_but_no_input(api: Api) -> None:
    token = api.token(Role.admin)
    response = api.request("POST", "/v1/clients", token=token,
                           json={"label": "11010519491231002X", "role": "superuser", "extra": 1})
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "validation"
    assert ["body", "role"] in [e["loc"] for e in body["errors"]]
    assert "superuser" not in response.text and "11010519491231002X" not in response.text


def test_domain_validation_is_422_with_field(api: Api) -> None:
    token = api.token(Role.admin)
    response = api.request("POST", "/v1/clients", token=token, json={"label": "desk", "role": "partner"})
    assert response.status_code == 422
    assert response.json()["field"] == "partner_base_id"


def test_unknown_path_and_method(api: Api) -> None:
    assert api.request("GET", "/v1/nothing").json()["type"] == PROBLEM_BASE + "not_found"
    response = api.request("DELETE", "/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


def test_bad_path_parameter_is_422(api: Api) -> None:
    response = api.request("POST", "/v1/clients/NOT-AN-ID/revoke", token=api.token(Role.admin))
    assert response.status_code == 422


def test_revoking_unknown_client_is_404(api: Api) -> None:
    response = api.request("POST", "/v1/clients/0123456789ab/revoke", token=api.token(Role.admin))
    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM_BASE + "not_found"


class BrokenStore:
    """A client store whose backend fails — with a message that must never reach a client."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def get(self, client_id: str) -> ClientRecord | None:
        raise self.exc

    async def add(self, record: ClientRecord) -> None:
        raise self.exc

    async def revoke(self, client_id: str) -> ClientRecord:
        raise self.exc

    async def list(self) -> Sequence[ClientRecord]:
        raise self.exc


FAILURES = [RuntimeError("db password=hunter2 at line 7")]  # KeyStoreError → 503: test_review_fixes


@pytest.fixture(params=FAILURES)
def broken_api(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Api]:
    services = Services(clients=BrokenStore(request.param), rate_limiter=InProcessRateLimiter(RateLimit()),
                        audit=InMemoryAuditSink())
    with asyncio.Runner() as runner:
        api = Api(create_app(settings, services=services), runner)
        yield api
        runner.run(api.client.aclose())


def test_unexpected_errors_are_opaque_500s(broken_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="cardsvc"):
        response = broken_api.request("GET", "/v1/whoami", token=VALID_TOKEN)
    assert response.status_code == 500
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "internal" and len(body["error_id"]) == 32
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert body["error_id"] in caplog.text  # the operator can find it in the log
