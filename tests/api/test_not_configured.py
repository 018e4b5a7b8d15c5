"""A server without card keys: SUN and reader-tap verification answer 503 ``not_configured``
(problem+json, or the tap page), with a fixed message that names no key or path; QR still works."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from cardsvc.api.problems import status_for
from cardsvc.config import Settings
from cardsvc.errors import NotConfigured
from cardsvc.registry import verification_repo as repo
from cardsvc.verification.roles import Role
from tests.api.conftest import Api
from tests.api.verify_support import make_db_api
from tests.verification.world import FMCOS, World, make_world, sqlite_url

FIXED_DETAIL = "this server is not configured for this request"


@pytest.fixture
def keyless(tmp_path: Path, settings: Settings) -> Iterator[tuple[Api, World]]:
    with make_world(sqlite_url(tmp_path)) as world:
        tap_url = world.tap_url(world.issue_card())  # computed with the keys the server will not have
        world.svc = dataclasses.replace(world.svc, card_keys=None, sun_checkers={})
        world.tap = tap_url  # type: ignore[attr-defined]
        with make_db_api(settings, world) as api:
            yield api, world


def _assert_opaque_503(body: dict[str, object]) -> None:
    assert body["type"] == "https://cardsvc.example/problems/not_configured"
    assert (body["status"], body["detail"]) == (503, FIXED_DETAIL)
    text = str(body)
    assert "master" not in text and "card-master" not in text and "/" not in text.split("problems/")[1]


def test_not_configured_is_a_503_with_a_fixed_message() -> None:
    assert status_for(NotConfigured()) == 503
    assert NotConfigured().message == FIXED_DETAIL


def test_sun_json_without_card_keys_is_503(keyless: tuple[Api, World]) -> None:
    api, world = keyless
    params = dict(parse_qsl(urlsplit(world.tap).query))  # type: ignore[attr-defined]
    response = api.request("GET", "/v1/verify/sun", params=params, token=api.token(Role.partner))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    _assert_opaque_503(response.json())
    with world.session() as s:
        assert repo.audit_count(s) == 0


def test_tap_page_without_card_keys_is_a_503_page(keyless: tuple[Api, World]) -> None:
    api, world = keyless
    parts = urlsplit(world.tap)  # type: ignore[attr-defined]
    page = api.request("GET", f"{parts.path}?{parts.query}")
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "master" not in page.text


def test_reader_tap_without_card_keys_is_503(keyless: tuple[Api, World]) -> None:
    api, world = keyless
    token = api.token(Role.service_point)
    card = world.issue_card(profile=FMCOS)
    nonce = api.request("POST", "/v1/challenges", token=token).json()["challenge"]
    body = {"challenge": nonce, "uid": card.uid.hex(), "kind": "internal_auth", "payload": "00" * 8}
    response = api.request("POST", "/v1/verify/card", token=token, json=body)
    assert response.status_code == 503, response.text
    _assert_opaque_503(response.json())


def test_qr_still_verifies_without_card_keys(keyless: tuple[Api, World]) -> None:
    api, world = keyless
    card = world.issue_card()
    response = api.request("POST", "/v1/verify/qr", token=api.token(Role.clerk), json={"qr": card.qr})
    assert response.status_code == 200 and response.json()["outcome"] == "OK"
