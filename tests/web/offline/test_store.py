"""store.js in Chromium: check-ins made offline are queued in IndexedDB and reach the server
exactly once across a reconnect and a lost response; the bundle and eligibility list stay on the
device and verify a guest with the network off."""

from __future__ import annotations

from datetime import date
from typing import Any

from playwright.sync_api import Page

from cardsvc.credential import issue_credential, to_qr_text
from cardsvc.verification.recuperation import PSEUDONYM_SIZE, pseudonym

from .conftest import SyncLedger
from .material import NOW, Keys, claims

PROGRAMME = "rest-2026-q4"
QR = "UC1:" + "6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N IOP-IA%NFQGRJPC%OQHIZC4.OI1RM8ZA.A5:S9MKN"

_OPEN = """async ([dbName, watch]) => {
  const { openOfflineStore } = await import("/js/offline/store.js");
  window.store = await openOfflineStore({ dbName });
  window.states = [];
  window.syncsDone = 0;
  window.store.subscribe((s) => {
    const last = window.states[window.states.length - 1];
    if (last && last.syncing && !s.syncing) window.syncsDone += 1;
    window.states.push(s);
  });
  window.stopWatching = watch ? window.store.watchConnectivity(window) : () => {};
}"""


def _open(page: Page, name: str, *, watch: bool = True) -> None:
    """Open the store in the page; ``watch``: sync on "online" and after each enqueue."""
    page.evaluate(_OPEN, [name, watch])


def _enqueue(page: Page, key: str, qr: str = QR) -> None:
    page.evaluate("([k, qr, p]) => store.enqueueCheckin({ programme: p, qr, idempotencyKey: k })",
                  [key, qr, PROGRAMME])


def _sync(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("store.sync()")
    return result


def test_offline_checkins_reach_the_server_exactly_once(offline_page: Page, ledger: SyncLedger) -> None:
    page = offline_page
    _open(page, "exactly-once")
    keys = [f"checkin-{n:04d}-offline" for n in range(3)]
    page.context.set_offline(True)
    for key in keys:
        _enqueue(page, key)
    offline_try = _sync(page)
    assert offline_try["pending"] == 3 and offline_try["error"] and ledger.requests == []
    assert [s["pending"] for s in page.evaluate("states") if not s["online"]][-1] == 3

    ledger.drop_next = 1  # the server records the batch, then the answer is lost
    page.context.set_offline(False)  # the "online" event starts a sync by itself
    page.wait_for_function("window.syncsDone >= 2")
    assert ledger.requests == [keys] and sorted(ledger.records) == keys
    assert page.evaluate("store.pending()") != [] and page.evaluate("states.at(-1).lastError")

    retry = _sync(page)  # the same keys again: answered "duplicate", nothing recorded twice
    assert retry == {"accepted": 0, "duplicate": 3, "conflict": 0, "pending": 0, "error": None}
    assert ledger.requests == [keys, keys] and sorted(ledger.records) == keys
    assert page.evaluate("store.pending()") == []
    settled = {"pending": 0, "online": True, "syncing": False, "lastError": None}
    assert page.evaluate("states.at(-1)") == settled
    assert _sync(page)["accepted"] == 0 and len(ledger.requests) == 2  # an empty queue sends nothing


def test_a_refused_checkin_leaves_the_queue_with_its_reason(offline_page: Page, ledger: SyncLedger) -> None:
    page = offline_page
    _open(page, "refused", watch=False)
    _enqueue(page, "checkin-accepted-1")
    _enqueue(page, "checkin-refused-01", qr="UC1:REFUSED")
    assert _sync(page) == {"accepted": 1, "duplicate": 0, "conflict": 1, "pending": 0, "error": None}
    rejected = page.evaluate("store.rejected()")
    refused = [(r["idempotencyKey"], r["reason"]) for r in rejected]
    assert refused == [("checkin-refused-01", "already_checked_in")]
    assert list(ledger.records) == ["checkin-accepted-1"]


def test_queued_items_survive_a_reload(offline_page: Page, ledger: SyncLedger) -> None:
    page = offline_page
    _open(page, "reload", watch=False)
    _enqueue(page, "checkin-before-reload")
    page.evaluate("store.close()")
    page.reload()
    _open(page, "reload", watch=False)
    assert [i["idempotencyKey"] for i in page.evaluate("store.pending()")] == ["checkin-before-reload"]
    assert _sync(page)["accepted"] == 1 and list(ledger.records) == ["checkin-before-reload"]


_VERIFY_FROM_STORE = """async ({ anchor, nowMs, today }) => {
  const v = await import("/js/offline/verify.js");
  const { fromHex } = await import("/js/offline/bundle.js");
  const saved = await store.loadBundle();
  const anchors = v.anchorFromCoseKey(fromHex(anchor));
  const verifier = await v.createVerifier({ bundleBytes: saved.bytes, anchors, clock: () => nowMs });
  const list = await store.loadEligibility("rest-2026-q4");
  const guest = await verifier.verify(window.guestQr);
  const when = new Date(today);
  return { online: navigator.onLine, status: guest.status, etag: saved.etag,
           eligible: await v.checkEligibility(list, guest.cardNumber, when),
           stranger: await v.checkEligibility(list, "202600099999", when),
           late: await v.checkEligibility(list, guest.cardNumber, new Date("2027-02-01T00:00:00Z")) };
}"""


def test_bundle_and_list_kept_on_the_device_verify_a_guest_offline(offline_page: Page,
                                                                   ledger: SyncLedger) -> None:
    keys = Keys.generate()
    list_key = bytes(range(32))
    guest = "202600012345"
    eligibility = {
        "programme": PROGRAMME, "base": "base-beidaihe", "starts_on": "2026-10-01", "ends_on": "2026-12-31",
        "list_key": list_key.hex(), "pseudonym_bytes": PSEUDONYM_SIZE,
        "entries": sorted(pseudonym(list_key, n).hex() for n in (guest, "202600000001")),
    }
    page = offline_page
    _open(page, "bundle")
    saved = page.evaluate("([b, l]) => Promise.all([store.saveBundle(Uint8Array.from(b),"
                          " { sequence: 7, etag: 'W/\"7\"' }), store.saveEligibility(l)])",
                          [list(keys.bundle()), eligibility])
    assert saved == [True, None]
    older = page.evaluate("store.saveBundle(Uint8Array.of(1, 2, 3), { sequence: 6 })")
    assert older is False  # a replayed older bundle would bring revoked cards back
    page.evaluate("stopWatching(); store.close()")
    page.evaluate("Promise.all([import('/js/offline/verify.js'), import('/js/offline/bundle.js')])")
    page.context.set_offline(True)  # the modules are loaded (a page would hold them in its cache)
    _open(page, "bundle")
    page.evaluate("(qr) => { window.guestQr = qr; }", to_qr_text(issue_credential(keys.ed, claims(guest))))
    found = page.evaluate(_VERIFY_FROM_STORE, {
        "anchor": keys.anchors()[0].to_cose_key().hex(), "nowMs": int(NOW.timestamp() * 1000),
        "today": date(2026, 11, 24).isoformat()})
    assert found == {
        "online": False, "status": "ok", "etag": 'W/"7"',
        "eligible": {"eligible": True, "reason": None},
        "stranger": {"eligible": False, "reason": "not_on_list"},
        "late": {"eligible": False, "reason": "programme_not_running"},
    }
    assert ledger.requests == []


def test_two_tabs_syncing_at_once_send_each_checkin_once(offline_page: Page, ledger: SyncLedger) -> None:
    first = offline_page
    second = first.context.new_page()
    second.goto("/")
    for page in (first, second):
        _open(page, "two-tabs", watch=False)
    keys = [f"checkin-tab-{n:04d}" for n in range(5)]
    for key in keys:
        _enqueue(first, key)
    ledger.delay_s = 0.5  # the first tab's request is still open when the second tab starts
    for page in (first, second):
        page.evaluate("() => { window.running = store.sync(); }")
    results = [page.evaluate("running") for page in (first, second)]
    assert sorted(r["accepted"] for r in results) == [0, 5]  # the second tab found the queue empty
    assert ledger.requests == [keys] and sorted(ledger.records) == keys


def test_a_checkin_queued_during_a_sync_is_sent_right_after_it(offline_page: Page,
                                                               ledger: SyncLedger) -> None:
    page = offline_page
    _open(page, "during-sync")
    ledger.delay_s = 0.5
    _enqueue(page, "checkin-first-0001")  # starts a sync (watching, online)
    page.wait_for_function("states.at(-1).syncing")
    _enqueue(page, "checkin-second-001")  # queued while that sync's request is open
    page.wait_for_function("window.syncsDone >= 2 && states.at(-1).pending === 0")
    assert ledger.requests == [["checkin-first-0001"], ["checkin-second-001"]]
