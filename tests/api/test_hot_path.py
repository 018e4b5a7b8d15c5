"""The hot verification routes (served before FastAPI, :mod:`cardsvc.api.hotpath`) answer exactly
as their FastAPI routes do: the same requests against an app with ``hot_path=False`` and one with
``hot_path=True`` over the same database give the same status, content type, headers that matter,
and body (minus timestamps and error ids)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlmodel import select

from cardsvc.api.app import create_app
from cardsvc.config import Settings
from cardsvc.registry.cards import Card, CardStatus
from cardsvc.verification.ratelimit import RateLimit
from cardsvc.verification.roles import Role
from cardsvc.verification.store import read_audit
from tests.api.conftest import Api
from tests.api.verify_support import world_services
from tests.verification.world import World, make_world, sqlite_url

QR, SUN = "/v1/verify/qr", "/v1/verify/sun"


@dataclass
class Pair:
    plain: Api  # FastAPI routes
    hot: Api  # HotRoutes
    world: World

    def both(self, method: str, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
        return self.plain.request(method, path, **kw), self.hot.request(method, path, **kw)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made


def _pair(settings: Settings, world: World, rate_limit: RateLimit | None = None) -> Iterator[Pair]:
    with asyncio.Runner() as runner:
        apps = [Api(create_app(settings, services=world_services(world, rate_limit=rate_limit), hot_path=hot),
                    runner) for hot in (False, True)]
        assert apps[1].app.hot is not None and apps[0].app.hot is None  # type: ignore[attr-defined]
        yield Pair(apps[0], apps[1], world)
        for api in apps:
            runner.run(api.client.aclose())


@pytest.fixture
def pair(settings: Settings, world: World) -> Iterator[Pair]:
    yield from _pair(settings, world)


def _comparable(response: httpx.Response) -> tuple[int, str, Any]:
    body: Any = response.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("checked_at", "error_id", "errors")}
    return response.status_code, response.headers["content-type"], body


def _same(responses: tuple[httpx.Response, httpx.Response], status: int) -> dict[str, Any]:
    plain, hot = responses
    assert _comparable(plain) == _comparable(hot), (plain.text, hot.text)
    assert plain.status_code == status, plain.text
    for name in ("www-authenticate", "retry-after"):
        assert plain.headers.get(name) == hot.headers.get(name)
    return hot.json()  # type: ignore[no-any-return]


def _sun_params(world: World) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(world.tap_url(world.cards[0])).query))


def test_qr_ok_and_nok_are_identical(pair: Pair) -> None:
    card = pair.world.issue_card(pair.world.add_member("欧阳娜娜"))
    for role in Role:
        token = pair.plain.token(role)
        body = _same(pair.both("POST", QR, token=token, json={"qr": card.qr}), 200)
        assert body["outcome"] == "OK" and body["checked_at"]
    pair.world.set_card_status(card, CardStatus.lost)
    body = _same(pair.both("POST", QR, token=pair.plain.token(Role.partner), json={"qr": card.qr}), 200)
    assert (body["outcome"], body["reason"], body["member"]) == ("NOK", "card_lost", None)


def test_sun_ok_replay_unknown_and_bad_parameters(pair: Pair) -> None:
    pair.world.issue_card()
    token = pair.plain.token(Role.service_point)
    plain_url, hot_url = _sun_params(pair.world), _sun_params(pair.world)  # two fresh counters
    first = pair.plain.request("GET", SUN, token=token, params=plain_url), \
        pair.hot.request("GET", SUN, token=token, params=hot_url)
    assert _same(first, 200)["outcome"] == "OK"
    assert _same(pair.both("GET", SUN, token=token, params=hot_url), 200)["reason"] == "replay"
    unknown = {"p": "00" * 16, "m": "00" * 8}
    assert _same(pair.both("GET", SUN, token=token, params=unknown), 404)["reason"] == "unknown_card"
    for params in ({"p": "00" * 16}, {"p": "zz" * 16, "m": "00" * 8}, {}, {"p": "0" * 15, "m": "0" * 16}):
        _same(pair.both("GET", SUN, token=token, params=params), 422)


def test_access_is_decided_the_same_way(pair: Pair) -> None:
    pair.world.issue_card()
    card = pair.world.cards[0]
    _same(pair.both("POST", QR, json={"qr": card.qr}), 401)
    _same(pair.both("POST", QR, token="cs_0123456789ab_" + "x" * 43, json={"qr": card.qr}), 401)
    _same(pair.both("POST", QR, token=pair.plain.token(Role.clerk, revoked=True), json={"qr": card.qr}), 401)
    _same(pair.both("GET", SUN, token=pair.plain.token(Role.clerk), params=_sun_params(pair.world)), 403)
    _same(pair.both("GET", SUN, params=_sun_params(pair.world)), 401)


@pytest.mark.parametrize(("kw", "status"), [
    ({"json": {"qr": "UC1:ABC", "extra": 1}}, 422),
    ({"json": {"qr": "not a qr"}}, 422),
    ({"json": {"qr": 5}}, 422),
    ({"json": ["UC1:ABC"]}, 422),
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
    ({}, 422),
    ({"content": b"qr=UC1:ABC", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
    ({"content": b"{" + b" " * 70_000 + b"}", "headers": {"Content-Type": "application/json"}}, 413),
])
def test_bad_bodies_are_refused_the_same_way(pair: Pair, kw: dict[str, Any], status: int) -> None:
    token = pair.plain.token(Role.partner)
    body = _same(pair.both("POST", QR, token=token, **kw), status)
    assert body["type"].endswith(("validation", "unsupported_media_type", "payload_too_large"))
    assert all("input" not in error for error in body.get("errors", []))  # never the submitted value
    assert "not a qr" not in str(body) and "UC1:ABC" not in str(body)


def test_unknown_qr_card_is_404(pair: Pair) -> None:
    card = pair.world.issue_card()
    with pair.world.session() as s:  # the credential is genuine but the card row is gone
        row = s.exec(select(Card).where(Card.card_number == card.card_number)).one()
        row.card_number = "2099" + row.card_number[4:]
        s.add(row)
        s.commit()
    assert _same(pair.both("POST", QR, token=pair.plain.token(Role.admin), json={"qr": card.qr}),
                 404)["reason"] == "unknown_card"


def test_rate_limit_is_the_same(settings: Settings, world: World) -> None:
    for pair in _pair(settings, world, RateLimit(burst=1, per_second=0.01)):
        card = world.issue_card()
        plain_token, hot_token = pair.plain.token(Role.partner), pair.hot.token(Role.partner)
        assert pair.plain.request("POST", QR, token=plain_token, json={"qr": card.qr}).status_code == 200
        assert pair.hot.request("POST", QR, token=hot_token, json={"qr": card.qr}).status_code == 200
        limited = (pair.plain.request("POST", QR, token=plain_token, json={"qr": card.qr}),
                   pair.hot.request("POST", QR, token=hot_token, json={"qr": card.qr}))
        assert _same(limited, 429)["retry_after"] == 100


def test_hot_requests_are_counted_and_audited(pair: Pair) -> None:
    card = pair.world.issue_card()
    pair.hot.request("POST", QR, token=pair.hot.token(Role.partner), json={"qr": card.qr})
    pair.hot.request("POST", QR, json={"qr": card.qr})
    metrics = pair.hot.request("GET", "/metrics").text
    assert 'cardsvc_http_requests_total{method="POST",route="/v1/verify/qr",status="200"} 1.0' in metrics
    assert 'cardsvc_http_requests_total{method="POST",route="/v1/verify/qr",status="401"} 1.0' in metrics
    with pair.world.session() as s:
        rows = read_audit(s)
    assert [(r.event.event_type, r.event.outcome, r.event.subject) for r in rows] == [
        ("verify.qr", "ok", card.card_number)]  # the refused request recorded nothing


def test_other_methods_and_paths_still_go_to_fastapi(pair: Pair) -> None:
    token = pair.plain.token(Role.partner)
    slash = pair.both("POST", QR + "/", token=token, json={})
    assert [r.status_code for r in slash] == [307, 307]  # FastAPI's redirect, not the hot route
    _same(pair.both("POST", "/v1/verify/qrx", token=token, json={}), 404)
    _same(pair.both("GET", QR, token=token), 405)
