"""The verification routes end to end over the DB-backed app: views per role, the phone-tap page,
replays under concurrency, challenges, service records, check-ins and offline sync, the trust bundle,
and bad input (typed 4xx, nothing recorded)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from cardsvc.config import Settings
from cardsvc.credential import OfflineVerifier, TrustAnchor, TrustBundle, VerificationStatus
from cardsvc.registry import verification_repo as repo
from cardsvc.registry.cards import CardStatus
from cardsvc.registry.verification_models import SunCounter
from cardsvc.verification.audit import verify_chain
from cardsvc.verification.recuperation import pseudonym
from cardsvc.verification.roles import Role
from cardsvc.verification.store import DbClientStore, read_audit
from tests.api.conftest import Api
from tests.api.verify_support import make_db_api
from tests.verification.world import FMCOS, PROGRAMME, World, make_world, sqlite_url

ID_NUMBER = "11010519491231002X"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made


@pytest.fixture
def api(settings: Settings, world: World) -> Iterator[Api]:
    with make_db_api(settings, world) as made:
        yield made


def _audit_count(world: World) -> int:
    with world.session() as s:
        return repo.audit_count(s)


def _verify(api: Api, token: str, qr: str) -> dict:  # type: ignore[type-arg]
    response = api.request("POST", "/v1/verify/qr", token=token, json={"qr": qr})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- what each role sees ------------------------------------------------------------------------


def test_member_view_per_role(api: Api, world: World) -> None:
    world.programme(quota=3)
    card = world.issue_card(world.add_member("欧阳娜娜", id_number=ID_NUMBER))
    views = {role: _verify(api, api.token(role), card.qr)["member"] for role in Role}
    assert views[Role.admin]["id_number"] == ID_NUMBER and views[Role.admin]["name"] == "欧阳娜娜"
    assert views[Role.clerk] == {"member_id": card.public_id, "name": "欧阳娜娜",
                                 "organisation": "某区总工会", "id_last4": "002X",
                                 "membership_status": "active", "card_status": "active"}
    assert set(views[Role.service_point]) == {"member_id", "name", "organisation", "membership_status",
                                              "recent_services"}
    assert views[Role.partner] == {"member_id": card.public_id, "masked_name": "欧阳*娜", "id_last4": "002X",
                                   "eligibility": {PROGRAMME: True}, "quota": {PROGRAMME: 3}}


def test_nok_has_no_member_and_is_200(api: Api, world: World) -> None:
    card = world.issue_card()
    world.set_card_status(card, CardStatus.lost)
    body = _verify(api, api.token(Role.partner), card.qr)
    assert (body["outcome"], body["reason"], body["member"]) == ("NOK", "card_lost", None)


# --- the phone-tap page -------------------------------------------------------------------------


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_tap_page_anonymous_then_replayed(api: Api, world: World) -> None:
    card = world.issue_card(world.add_member("张三丰"))
    url = _path(world.tap_url(card))
    page = api.request("GET", url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "真实会员卡" in page.text and "张*丰" in page.text
    assert "张三丰" not in page.text and "002X" not in page.text and card.card_number not in page.text
    again = api.request("GET", url)
    assert again.status_code == 200 and "此链接已被使用" in again.text and "张*丰" not in again.text


def test_tap_page_with_a_staff_token_shows_the_role_view(api: Api, world: World) -> None:
    card = world.issue_card(world.add_member("张三丰"))
    page = api.request("GET", _path(world.tap_url(card)), token=api.token(Role.service_point))
    assert "张三丰" in page.text and "所在工会" in page.text


def test_tap_page_bad_link_is_a_4xx_page(api: Api) -> None:
    page = api.request("GET", "/t?p=zz&m=00")
    assert page.status_code == 422 and "链接无效" in page.text


def test_fifty_concurrent_sun_replays_through_the_api(api: Api, world: World) -> None:
    card = world.issue_card()
    params = dict(parse_qsl(urlsplit(world.tap_url(card)).query))
    token = api.token(Role.partner)

    async def burst() -> list[str]:
        calls = [api.client.get("/v1/verify/sun", params=params, headers={"Authorization": f"Bearer {token}"})
                 for _ in range(50)]
        return [r.json()["outcome"] for r in await asyncio.gather(*calls)]

    outcomes = api.run(burst())
    assert outcomes.count("OK") == 1 and outcomes.count("NOK") == 49


# --- reader tap ----------------------------------------------------------------------------------


def _answer(world: World, api: Api, token: str, *, card_profile: str = FMCOS) -> tuple[dict, str]:  # type: ignore[type-arg]
    card = world.issue_card(profile=card_profile)
    nonce = api.request("POST", "/v1/challenges", token=token).json()["challenge"]
    body = {"challenge": nonce, "uid": card.uid.hex(), "kind": "internal_auth",
            "payload": world.internal_auth(card, bytes.fromhex(nonce)).hex()}
    return body, card.card_number


def test_reader_tap_ok_then_the_challenge_is_spent(api: Api, world: World) -> None:
    token = api.token(Role.service_point)
    body, number = _answer(world, api, token)
    first = api.request("POST", "/v1/verify/card", token=token, json=body)
    assert first.json()["outcome"] == "OK" and first.json()["card_number"] == number
    count = _audit_count(world)
    again = api.request("POST", "/v1/verify/card", token=token, json=body)
    assert again.status_code == 409 and again.json()["reason"] == "challenge_used"
    assert _audit_count(world) == count  # nothing recorded


def test_reader_tap_expired_foreign_and_wrong_cryptogram(api: Api, world: World) -> None:
    token, other = api.token(Role.service_point), api.token(Role.partner)
    body, _ = _answer(world, api, token)
    foreign = api.request("POST", "/v1/verify/card", token=other, json=body)
    assert foreign.status_code == 409 and foreign.json()["reason"] == "challenge_unknown"
    world.clock.advance(seconds=61)
    expired = api.request("POST", "/v1/verify/card", token=token, json=body)
    assert expired.status_code == 409 and expired.json()["reason"] == "challenge_expired"
    body, _ = _answer(world, api, token)
    body["payload"] = "00" * 8
    wrong = api.request("POST", "/v1/verify/card", token=token, json=body)
    assert (wrong.status_code, wrong.json()["outcome"], wrong.json()["reason"]) == (200, "NOK", "card_proof")


def test_reader_tap_with_a_presented_credential(api: Api, world: World) -> None:
    token = api.token(Role.partner)
    body, _ = _answer(world, api, token)
    other = world.issue_card(profile=FMCOS)
    body["credential"] = other.credential.hex()
    answer = api.request("POST", "/v1/verify/card", token=token, json=body).json()
    assert (answer["outcome"], answer["reason"]) == ("NOK", "credential_superseded")


# --- service records ------------------------------------------------------------------------------


def test_service_record_after_a_tap_then_stats(api: Api, world: World) -> None:
    token = api.token(Role.service_point)
    card = world.issue_card()
    body = {"item": "legal_consultation", "card_number": card.card_number}
    refused = api.request("POST", "/v1/service-records", token=token, json=body)
    assert refused.status_code == 409 and refused.json()["reason"] == "no_recent_verification"
    assert _verify(api, token, card.qr)["outcome"] == "OK"
    headers = {"Idempotency-Key": "svc-record-1"}
    made = api.request("POST", "/v1/service-records", token=token, json=body, headers=headers)
    again = api.request("POST", "/v1/service-records", token=token, json=body, headers=headers)
    assert (made.status_code, again.status_code) == (201, 200)
    assert made.json()["service_point"] == "sp-xicheng-01" and again.json()["replayed"] is True
    stats = api.request("GET", "/v1/service-records/stats", token=token).json()
    assert stats == [{"service_point": "sp-xicheng-01", "item": "legal_consultation", "month": "2026-11",
                      "count": 1}]
    recent = _verify(api, token, card.qr)["member"]["recent_services"]
    assert recent == [{"date": "2026-11-24", "service_point": "西城街道职工服务站", "item": "法律咨询"}]


def test_service_point_cannot_record_or_count_elsewhere(api: Api, world: World) -> None:
    token = api.token(Role.service_point)
    other = api.request("POST", "/v1/service-records", token=token,
                        json={"item": "consultation", "qr": world.issue_card().qr,
                              "service_point": "sp-chengguan"})
    assert other.status_code == 403
    stats = api.request("GET", "/v1/service-records/stats?service_point=sp-chengguan", token=token)
    assert stats.status_code == 403


# --- check-ins -----------------------------------------------------------------------------------


def test_checkin_needs_an_idempotency_key_and_replays(api: Api, world: World) -> None:
    world.programme(quota=2)
    token, card = api.token(Role.partner), world.issue_card()
    body = {"programme": PROGRAMME, "qr": card.qr}
    assert api.request("POST", "/v1/checkins", token=token, json=body).status_code == 422
    headers = {"Idempotency-Key": "desk-0000001"}
    first = api.request("POST", "/v1/checkins", token=token, json=body, headers=headers)
    second = api.request("POST", "/v1/checkins", token=token, json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["checkin_id"] == second.json()["checkin_id"] and first.json()["quota_left"] == 1
    out = api.request("POST", f"/v1/checkins/{first.json()['checkin_id']}/checkout", token=token)
    assert out.status_code == 200 and out.json()["checked_out_at"] is not None


def test_offline_list_and_sync_report_conflicts(api: Api, world: World) -> None:
    world.programme(quota=1)
    token = api.token(Role.partner)
    a, b = world.issue_card(), world.issue_card(world.add_member("李四", id_number="110105194912310037"))
    listing = api.request("GET", f"/v1/programmes/{PROGRAMME}/eligibility", token=token).json()
    assert len(listing["entries"]) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", e) for e in listing["entries"])
    assert a.card_number not in str(listing) and "张" not in str(listing)
    items = [{"idempotency_key": "offline-a-01", "qr": a.qr, "checked_in_at": "2026-11-24T07:00:00Z"},
             {"idempotency_key": "offline-b-01", "qr": b.qr, "checked_in_at": "2026-11-24T07:05:00Z"},
             {"idempotency_key": "offline-a-01", "qr": a.qr, "checked_in_at": "2026-11-24T07:00:00Z"}]
    results = api.request("POST", "/v1/checkins/sync", token=token,
                          json={"programme": PROGRAMME, "items": items}).json()
    assert [(r["status"], r["reason"]) for r in results] == [
        ("accepted", None), ("conflict", "quota_exhausted"), ("duplicate", None)]
    resync = api.request("POST", "/v1/checkins/sync", token=token,
                         json={"programme": PROGRAMME, "items": items[:1]}).json()
    assert resync[0]["status"] == "duplicate"


def test_other_partners_programme_is_403(api: Api, world: World) -> None:
    world.programme("prog-huangshan", base="base-huangshan")
    token = api.token(Role.partner)
    listing = api.request("GET", "/v1/programmes/prog-huangshan/eligibility", token=token)
    checkin = api.request("POST", "/v1/checkins", token=token, headers={"Idempotency-Key": "desk-0000002"},
                          json={"programme": "prog-huangshan", "qr": world.issue_card().qr})
    assert (listing.status_code, checkin.status_code) == (403, 403)
    assert _audit_count(world) == 0


# --- trust bundle ---------------------------------------------------------------------------------


def test_trust_bundle_etag_and_revocations(api: Api, world: World) -> None:
    token = api.token(Role.partner)
    card = world.issue_card()
    first = api.request("GET", "/v1/trust-bundle", token=token)
    etag = first.headers["etag"]
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/cose")
    cached = api.request("GET", "/v1/trust-bundle", token=token, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    world.set_card_status(card, CardStatus.revoked)
    fresh = api.request("GET", "/v1/trust-bundle", token=token, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    signer = world.bundle_signer
    anchor = TrustAnchor(signer.kid, signer.alg, signer.public_key_bytes())
    bundle = TrustBundle.load(fresh.content, anchor)
    assert bundle.is_revoked(card.card_number) and bundle.issuer == "SZGH"


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
    ({"content": b"qr=UC1:AB", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415),
    ({"json": {"qr": "UC1:" + "A" * 70_000}}, 413),
    ({"json": {"qr": "UC1:ABC", "extra": 1}}, 422),
    ({"json": {"qr": "UC1:ABC"}}, 422),
    ({"json": {}}, 422),
])
def test_bad_qr_bodies_are_typed_4xx_and_record_nothing(api: Api, world: World, kwargs: dict[str, object],
                                                        status: int) -> None:
    response = api.request("POST", "/v1/verify/qr", token=api.token(Role.partner), **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert _audit_count(world) == 0


def test_unknown_card_is_404(api: Api, world: World) -> None:
    token = api.token(Role.service_point)
    body, _ = _answer(world, api, token)
    body["uid"] = "01020304"
    response = api.request("POST", "/v1/verify/card", token=token, json=body)
    assert response.status_code == 404 and response.json()["reason"] == "unknown_card"
    assert _audit_count(world) == 0


def test_offline_partner_flow(api: Api, world: World) -> None:
    """Download bundle + list, verify a QR with no server, match the pseudonym, sync later."""
    world.programme()
    card = world.issue_card()
    token = api.token(Role.partner)
    raw = api.request("GET", "/v1/trust-bundle", token=token).content
    listing = api.request("GET", f"/v1/programmes/{PROGRAMME}/eligibility", token=token).json()
    signer = world.bundle_signer
    anchor = TrustAnchor(signer.kid, signer.alg, signer.public_key_bytes())
    verifier = OfflineVerifier.from_bundle_bytes(raw, anchor, clock=world.clock)
    result = verifier.verify(card.qr)
    assert result.status is VerificationStatus.ok and result.card_number == card.card_number
    assert pseudonym(bytes.fromhex(listing["list_key"]), card.card_number).hex() in listing["entries"]
    synced = api.request("POST", "/v1/checkins/sync", token=token, json={"programme": PROGRAMME, "items": [
        {"idempotency_key": "offline-x-01", "qr": card.qr, "checked_in_at": "2026-11-24T08:30:00Z"}]})
    assert synced.json()[0]["status"] == "accepted"


# --- the worker's client cache on the hot path ----------------------------------------------------


def _revoke_elsewhere(world: World, token: str) -> None:
    """Revoke as another worker would: straight in the table, this app's cache knows nothing."""
    client_id = token.split("_")[1]
    asyncio.run(DbClientStore(world.db).revoke(client_id))


def test_a_cached_client_revoked_by_another_worker_is_refused_at_commit(api: Api, world: World) -> None:
    card = world.issue_card()
    token = api.token(Role.partner)
    assert _verify(api, token, card.qr)["outcome"] == "OK"  # now in this worker's cache
    params = dict(parse_qsl(urlsplit(world.tap_url(card)).query))
    assert api.request("GET", "/v1/verify/sun", token=token, params=params).status_code == 200
    before = _audit_count(world)
    _revoke_elsewhere(world, token)
    refused = api.request("POST", "/v1/verify/qr", token=token, json={"qr": card.qr})
    assert refused.status_code == 401 and refused.json()["type"].endswith("authentication_required")
    params = dict(parse_qsl(urlsplit(world.tap_url(card)).query))
    assert api.request("GET", "/v1/verify/sun", token=token, params=params).status_code == 401
    assert _audit_count(world) == before  # nothing recorded for a revoked client
    with world.session() as s:  # and the SUN counter did not move for the refused tap
        assert s.get(SunCounter, card.card_number).last == card.counter - 1  # type: ignore[union-attr]


def test_the_cache_never_admits_a_wrong_secret_for_a_cached_id(api: Api, world: World) -> None:
    card = world.issue_card()
    token = api.token(Role.partner)
    assert _verify(api, token, card.qr)["outcome"] == "OK"
    forged = token[: -4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = api.request("POST", "/v1/verify/qr", token=forged, json={"qr": card.qr})
    assert response.status_code == 401


def test_batch_with_a_revoked_and_a_live_client_answers_each_on_its_own(api: Api, world: World) -> None:
    card = world.issue_card()
    live, dead = api.token(Role.partner), api.token(Role.partner)
    for token in (live, dead):
        assert _verify(api, token, card.qr)["outcome"] == "OK"
    _revoke_elsewhere(world, dead)
    before = _audit_count(world)

    async def burst() -> list[int]:
        calls = [api.client.post("/v1/verify/qr", json={"qr": card.qr},
                                 headers={"Authorization": f"Bearer {t}"}) for t in [live, dead] * 10]
        return [r.status_code for r in await asyncio.gather(*calls)]

    assert api.run(burst()) == [200, 401] * 10
    assert _audit_count(world) == before + 10


def test_a_refused_check_in_a_batch_answers_alone_and_records_nothing(api: Api, world: World) -> None:
    card = world.issue_card()
    token = api.token(Role.partner)
    before = _audit_count(world)

    async def burst() -> list[int]:
        bodies = [{"qr": card.qr}, {"qr": "UC1:NOT BASE45 AT ALL"}] * 10
        calls = [api.client.post("/v1/verify/qr", json=b, headers={"Authorization": f"Bearer {token}"})
                 for b in bodies]
        return [r.status_code for r in await asyncio.gather(*calls)]

    codes = api.run(burst())
    assert codes[0::2] == [200] * 10 and all(400 <= c < 500 for c in codes[1::2])
    assert _audit_count(world) == before + 10  # only the verifications that got an answer


def test_group_committed_verifications_keep_one_unbroken_audit_chain(api: Api, world: World) -> None:
    cards = [world.issue_card() for _ in range(3)]
    token = api.token(Role.partner)

    auth = {"Authorization": f"Bearer {token}"}

    async def burst() -> list[int]:
        calls = [api.client.post("/v1/verify/qr", json={"qr": c.qr}, headers=auth) for c in cards * 15]
        calls += [api.client.get("/v1/verify/sun", params=dict(parse_qsl(urlsplit(world.tap_url(c)).query)),
                                 headers=auth) for c in cards * 5]
        return [r.status_code for r in await asyncio.gather(*calls)]

    assert api.run(burst()) == [200] * 60
    with world.session() as s:
        rows = read_audit(s)
    verify_chain(rows)  # raises AuditIntegrityError naming the first bad row
    assert [r.seq for r in rows] == list(range(len(rows)))
    assert sum(r.event.event_type in {"verify.qr", "verify.sun"} for r in rows) == 60
