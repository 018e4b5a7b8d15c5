"""Review findings, end to end over the DB-backed app: an expired card is NOK ``expired`` by every
verification method and route (FastAPI and hot path), offline times must carry a timezone."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from cardsvc.api.app import create_app
from cardsvc.api.problems import status_for
from cardsvc.api.services import Services
from cardsvc.config import Settings
from cardsvc.credential.keys import Signer
from cardsvc.errors import KeyStoreError
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.cards import CardStatus
from cardsvc.verification.audit import InMemoryAuditSink
from cardsvc.verification.ratelimit import InProcessRateLimiter, RateLimit
from cardsvc.verification.roles import Role
from cardsvc.verification.trustbundle import TrustBundleCache
from tests.api.conftest import Api
from tests.api.test_errors import VALID_TOKEN, BrokenStore
from tests.api.verify_support import make_db_api, newest_client_id, world_services
from tests.verification.world import FMCOS, NTAG, PROGRAMME, World, make_world, sqlite_url

EXPIRED_DAYS = 400  # cards expire 365 days after issue


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made


@pytest.fixture(params=["fastapi", "hot_path"])
def api(request: pytest.FixtureRequest, settings: Settings, world: World) -> Iterator[Api]:
    if request.param == "fastapi":
        with make_db_api(settings, world) as made:
            yield made
        return
    with asyncio.Runner() as runner:
        made = Api(create_app(settings, services=world_services(world), hot_path=True), runner)
        assert made.app.hot is not None  # type: ignore[attr-defined]
        yield made
        runner.run(made.client.aclose())


def _sun_params(world: World, card: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(world.tap_url(card)).query))


def test_expired_card_is_nok_expired_by_qr_and_phone_tap(api: Api, world: World) -> None:
    card = world.issue_card(profile=NTAG)
    world.clock.advance(days=EXPIRED_DAYS)
    token = api.token(Role.service_point)
    qr = api.request("POST", "/v1/verify/qr", token=token, json={"qr": card.qr})
    sun = api.request("GET", "/v1/verify/sun", token=token, params=_sun_params(world, card))
    assert (qr.status_code, qr.json()["outcome"], qr.json()["reason"]) == (200, "NOK", "expired")
    assert (sun.status_code, sun.json()["outcome"], sun.json()["reason"]) == (200, "NOK", "expired")
    assert sun.json()["member"] is None


def test_expired_card_tap_page_is_not_genuine(api: Api, world: World) -> None:
    card = world.issue_card(profile=NTAG)
    world.clock.advance(days=EXPIRED_DAYS)
    page = api.request("GET", "/t", params=_sun_params(world, card))
    assert page.status_code == 200
    assert "真实会员卡" not in page.text and "此卡已过期" in page.text


def test_a_card_within_its_validity_still_verifies_by_phone_tap(api: Api, world: World) -> None:
    card = world.issue_card(profile=NTAG)
    world.clock.advance(days=300)
    token = api.token(Role.service_point)
    sun = api.request("GET", "/v1/verify/sun", token=token, params=_sun_params(world, card)).json()
    assert (sun["outcome"], sun["reason"]) == ("OK", None)


@pytest.mark.parametrize("profile", [FMCOS, NTAG])
def test_expired_card_reader_tap_is_nok_expired(api: Api, world: World, profile: str) -> None:
    card = world.issue_card(profile=profile)
    world.clock.advance(days=EXPIRED_DAYS)
    token = api.token(Role.service_point)
    nonce = api.request("POST", "/v1/challenges", token=token).json()["challenge"]
    if profile == FMCOS:
        body = {"challenge": nonce, "uid": card.uid.hex(), "kind": "internal_auth",
                "payload": world.internal_auth(card, bytes.fromhex(nonce)).hex()}
    else:
        body = {"challenge": nonce, "uid": card.uid.hex(), "kind": "sun", "payload": world.tap_url(card)}
    answer = api.request("POST", "/v1/verify/card", token=token, json=body)
    assert (answer.status_code, answer.json()["outcome"], answer.json()["reason"]) == (200, "NOK", "expired")


# --- offline times carry a timezone ----------------------------------------------------------------


@pytest.mark.parametrize("at", ["2026-11-24T08:30:00", "2026-11-24 08:30"])
def test_sync_time_without_timezone_is_422(api: Api, world: World, at: str) -> None:
    world.programme(quota=3)
    token, card = api.token(Role.partner), world.issue_card()
    response = api.request("POST", "/v1/checkins/sync", token=token, json={"programme": PROGRAMME, "items": [
        {"idempotency_key": "offline-x-01", "qr": card.qr, "checked_in_at": at}]})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    with world.session() as s:
        assert repo.find_checkin(s, programme_code=PROGRAMME, idempotency_key="offline-x-01") is None


def test_sync_time_with_an_offset_is_accepted(api: Api, world: World) -> None:
    world.programme(quota=3)
    token, card = api.token(Role.partner), world.issue_card()
    at = (world.clock() - dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    response = api.request("POST", "/v1/checkins/sync", token=token, json={"programme": PROGRAMME, "items": [
        {"idempotency_key": "offline-x-03", "qr": card.qr, "checked_in_at": at.isoformat()}]})
    assert response.status_code == 200, response.text
    assert response.json()[0]["status"] == "accepted"


# --- a revoked token still in the client cache gets 401 before any refusal ------------------------


def _revoke_behind_the_cache(world: World, client_id: str) -> None:
    """Revoked in the database (as by another worker): this process's client cache still holds it."""
    with world.session() as s:
        repo.revoke_client(s, client_id=client_id)
        s.commit()


def test_revoked_cached_token_gets_401_not_a_read_phase_refusal(api: Api, world: World) -> None:
    card = world.issue_card(profile=NTAG)
    token = api.token(Role.service_point)
    client_id = newest_client_id(api)
    ok = api.request("POST", "/v1/verify/qr", token=token, json={"qr": card.qr})
    assert ok.status_code == 200 and ok.json()["outcome"] == "OK"  # the client is cached now
    params = {k: "0" * len(v) for k, v in _sun_params(world, card).items()}  # no card of ours
    before = api.request("GET", "/v1/verify/sun", token=api.token(Role.service_point), params=params)
    assert before.status_code == 404  # what a live client gets for it
    _revoke_behind_the_cache(world, client_id)
    unknown = api.request("GET", "/v1/verify/sun", token=token, params=params)
    genuine = api.request("POST", "/v1/verify/qr", token=token, json={"qr": card.qr})
    assert (unknown.status_code, genuine.status_code) == (401, 401), unknown.text


# --- a reader tap of kind "sun" on a server without NTAG keys --------------------------------------


@pytest.mark.parametrize("keys", ["no_card_keys", "no_ntag_profile_keys"])
def test_reader_tap_sun_without_ntag_keys_is_503(settings: Settings, world: World, keys: str) -> None:
    card = world.issue_card(profile=NTAG)
    url = world.tap_url(card)
    world.svc = dataclasses.replace(world.svc, sun_checkers={},
                                    card_keys=None if keys == "no_card_keys" else world.svc.card_keys)
    world.svc.sun_checkers.clear()  # __post_init__ rebuilt them from the keys: a server without any
    with make_db_api(settings, world) as api:
        token = api.token(Role.service_point)
        nonce = api.request("POST", "/v1/challenges", token=token).json()["challenge"]
        body = {"challenge": nonce, "uid": card.uid.hex(), "kind": "sun", "payload": url}
        response = api.request("POST", "/v1/verify/card", token=token, json=body)
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("/not_configured")


def test_a_key_store_error_on_a_request_is_503_not_configured(settings: Settings, world: World) -> None:
    def no_signing_key(_now: dt.datetime) -> Signer:
        raise KeyStoreError("no active signing key at this time", hint="run `cardsvc keys rotate`")

    bundles = TrustBundleCache(no_signing_key, [], "DFTU", clock=world.clock)
    world.svc = dataclasses.replace(world.svc, bundles=bundles)
    with make_db_api(settings, world) as api:
        response = api.request("GET", "/v1/trust-bundle", token=api.token(Role.partner))
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["type"].endswith("/not_configured") and "signing key" not in str(body)
    assert status_for(KeyStoreError("x")) is None  # the table is unchanged: only requests map it


def test_a_locked_key_store_behind_the_client_store_is_an_opaque_503(settings: Settings) -> None:
    services = Services(clients=BrokenStore(KeyStoreError("hunter2 locked")),
                        rate_limiter=InProcessRateLimiter(RateLimit()), audit=InMemoryAuditSink())
    with asyncio.Runner() as runner:
        api = Api(create_app(settings, services=services), runner)
        response = api.request("GET", "/v1/whoami", token=VALID_TOKEN)
        runner.run(api.client.aclose())
    assert response.status_code == 503 and response.json()["type"].endswith("/not_configured")
    assert "hunter2" not in response.text and "Traceback" not in response.text


# --- check-in order and offline bounds over HTTP ---------------------------------------------------


def test_retry_of_an_accepted_check_in_after_revocation_is_answered_again(api: Api, world: World) -> None:
    world.programme(quota=3)
    token, card = api.token(Role.partner), world.issue_card()
    headers = {"Idempotency-Key": "desk-0000001"}
    body = {"programme": PROGRAMME, "qr": card.qr}
    first = api.request("POST", "/v1/checkins", token=token, json=body, headers=headers)
    world.set_card_status(card, CardStatus.revoked)
    again = api.request("POST", "/v1/checkins", token=token, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["checkin_id"] == first.json()["checkin_id"] and again.json()["replayed"] is True


def test_backdated_sync_is_a_conflict_with_a_reason(api: Api, world: World) -> None:
    world.programme(quota=3)
    token, card = api.token(Role.partner), world.issue_card()
    ahead = (world.clock() + dt.timedelta(hours=2)).isoformat()
    response = api.request("POST", "/v1/checkins/sync", token=token, json={"programme": PROGRAMME, "items": [
        {"idempotency_key": "offline-x-02", "qr": card.qr, "checked_in_at": "1999-01-01T00:00:00Z"},
        {"idempotency_key": "offline-x-03", "qr": card.qr, "checked_in_at": ahead}]})
    assert response.status_code == 200, response.text
    assert [(r["status"], r["reason"]) for r in response.json()] == [
        ("conflict", "checked_in_at_too_old"), ("conflict", "checked_in_at_future")]
