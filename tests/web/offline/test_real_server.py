"""The offline flow against the real API (the app over a verification World, served by uvicorn):
download the bundle and the eligibility list, verify two guests in the browser with the network
off, queue their check-ins, and sync them through a reconnect whose first answer is lost — the
database holds each check-in exactly once, and a refused one comes back with the server's reason."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Page
from sqlmodel import select

from cardsvc.api.app import create_app
from cardsvc.config import get_settings
from cardsvc.credential import TrustAnchor
from cardsvc.registry.verification_models import Checkin
from cardsvc.verification.roles import Role
from cardsvc.verification.store import DbClientStore
from cardsvc.verification.tokens import create_client
from tests.api.verify_support import world_services
from tests.support.browser import free_port
from tests.verification.world import NOW, PROGRAMME, World, make_world, sqlite_url

from .conftest import SyncLedger

_DOWNLOAD = """async ({ token, anchorHex, programme }) => {
  const v = await import("/js/offline/verify.js");
  const { fromHex } = await import("/js/offline/bundle.js");
  const { openOfflineStore } = await import("/js/offline/store.js");
  const auth = { Authorization: "Bearer " + token };
  const raw = new Uint8Array(await (await fetch("/v1/trust-bundle", { headers: auth })).arrayBuffer());
  const list = await (await fetch(`/v1/programmes/${programme}/eligibility`, { headers: auth })).json();
  const bundle = await v.loadBundle(raw, v.anchorFromCoseKey(fromHex(anchorHex)));
  window.store = await openOfflineStore({ dbName: "real-server", headers: () => auth });
  await store.saveBundle(raw, { sequence: bundle.sequence });
  await store.saveEligibility(list);
  return list.entries.length;
}"""

_OFFLINE_DESK = """async ({ anchorHex, programme, nowMs, guests }) => {
  const v = await import("/js/offline/verify.js");
  const { fromHex } = await import("/js/offline/bundle.js");
  const saved = await store.loadBundle();
  const verifier = await v.createVerifier({ bundleBytes: saved.bytes, clock: () => nowMs,
                                            anchors: v.anchorFromCoseKey(fromHex(anchorHex)) });
  const list = await store.loadEligibility(programme);
  const seen = [];
  for (const [key, qr] of guests) {
    const result = await verifier.verify(qr);
    const eligibility = await v.checkEligibility(list, result.cardNumber, new Date(nowMs));
    if (result.status === "ok" && eligibility.eligible) {
      await store.enqueueCheckin({ programme, qr, idempotencyKey: key, checkedInAt: new Date(nowMs) });
    }
    seen.push([result.status, eligibility.eligible]);
  }
  return { online: navigator.onLine, seen, pending: (await store.pending()).length };
}"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made


@pytest.fixture
def real_api(world: World, tmp_path: Path) -> Iterator[str]:
    """The real app (API routes, auth, idempotency) over the world's database, on a free port."""
    app = create_app(get_settings(env="test", data_dir=tmp_path), services=world_services(world))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start the app", pytrace=False)
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def _partner_token(world: World) -> str:
    """A partner client of base-beidaihe (its own event loop: Playwright holds this thread's)."""
    made = asyncio.run(create_client(DbClientStore(world.db), label="partner desk", role=Role.partner,
                                     partner_base_id="base-beidaihe"))
    return made.token


def _checkins(world: World) -> list[tuple[str, str, str]]:
    with world.session() as s:
        rows = s.exec(select(Checkin).order_by(Checkin.idempotency_key)).all()
        return [(r.idempotency_key, r.card_number, r.source) for r in rows]


def test_offline_checkins_reach_the_real_server_exactly_once(offline_page: Page, ledger: SyncLedger,
                                                            world: World, real_api: str) -> None:
    world.programme(quota=5)
    guest_a = world.issue_card()
    guest_b = world.issue_card(world.add_member("李四", id_number="110105194912310037"))
    with ThreadPoolExecutor(1) as pool:
        token = pool.submit(_partner_token, world).result()
    signer = world.bundle_signer
    anchor = TrustAnchor(signer.kid, signer.alg, signer.public_key_bytes()).to_cose_key().hex()
    ledger.upstream = real_api
    page = offline_page
    args: dict[str, Any] = {"token": token, "anchorHex": anchor, "programme": PROGRAMME}
    assert page.evaluate(_DOWNLOAD, args) == 2

    page.context.set_offline(True)
    guests = [["desk-a-0001", guest_a.qr], ["desk-b-0001", guest_b.qr], ["desk-a-0002", guest_a.qr]]
    desk = page.evaluate(_OFFLINE_DESK, args | {"guests": guests, "nowMs": int(NOW.timestamp() * 1000)})
    assert desk == {"online": False, "seen": [["ok", True]] * 3, "pending": 3}

    page.context.set_offline(False)
    ledger.drop_next = 1  # the server commits the batch; its answer never arrives
    lost = page.evaluate("store.sync()")
    assert lost["pending"] == 3 and lost["error"]
    assert _checkins(world) == [("desk-a-0001", guest_a.card_number, "offline"),
                                ("desk-b-0001", guest_b.card_number, "offline")]

    retry = page.evaluate("store.sync()")
    assert retry == {"accepted": 0, "duplicate": 2, "conflict": 1, "pending": 0, "error": None}
    assert [(r["idempotencyKey"], r["reason"]) for r in page.evaluate("store.rejected()")] == [
        ("desk-a-0002", "already_checked_in")]
    assert ledger.requests == [["desk-a-0001", "desk-b-0001", "desk-a-0002"]] * 2
    assert len(_checkins(world)) == 2  # nothing recorded twice
