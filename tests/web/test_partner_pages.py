"""Partner-base pages in Chromium against the live server (issue #6 item 5).

Cards are issued into the live server's database with its own keys (tests/web/point_cards.py);
each test makes its own programme at the partner's base so quotas are its own.

* typed QR → masked name, last 4 ID digits, eligibility, quota — and nothing more (no full name, no
  card number in the page) → check in; the same Idempotency-Key posted twice at once → one check-in;
* over quota → a clear message, nothing recorded;
* offline: bundle + eligibility list downloaded, network off, the guest verified by the offline
  modules, the check-in queued (pending count shown), network on → synced, recorded exactly once;
* the phone-tap page (``/partner/sun?p=…&m=…``) on a 375-px phone → check in;
* the camera: Chromium's fake capture device plays a picture of the guest's QR; jsQR decodes it;
* today's guests with check-out; axe-core on every page; access both ways.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import segno
from PIL import Image
from playwright.sync_api import Browser, Page, Playwright
from sqlalchemy import func, select

from cardsvc.config import get_settings
from cardsvc.registry.verification_models import Checkin
from cardsvc.verification.roles import Role
from tests.support.browser import (
    LiveServer,
    login_as,
    require_chromium,
    screenshot,
    serious_accessibility_violations,
)
from tests.web.point_cards import CardMaker, MemberCard

pytestmark = [pytest.mark.slow]
BASE = "base-beidaihe"
_DOUBLE_SUBMIT = """async ({ url, body, key }) => {
  const send = () => fetch(url, { method: "POST", credentials: "same-origin", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "Idempotency-Key": key,
               "X-CSRF-Token": document.body.dataset.csrf } });
  const answers = await Promise.all([send(), send()]);
  return Promise.all(answers.map(async (r) => ({ status: r.status, body: await r.json() })));
}"""


@pytest.fixture(scope="module")
def maker(live_server: LiveServer) -> Iterator[CardMaker]:
    made = CardMaker(get_settings(env="dev", data_dir=live_server.data_dir))
    yield made
    made.close()


def _programme(maker: CardMaker, quota: int) -> str:
    return maker.programme(f"web-{secrets.token_hex(4)}", base=BASE, quota=quota)


def _checkins(maker: CardMaker, card: MemberCard, programme: str, source: str | None = None) -> int:
    query = select(func.count()).select_from(Checkin).where(
        Checkin.card_number == card.card_number, Checkin.programme_code == programme)  # type: ignore[arg-type]
    if source is not None:
        query = query.where(Checkin.source == source)  # type: ignore[arg-type]
    return maker.count(query)


def _open(page: Page, programme: str) -> None:
    login_as(page, Role.partner)
    page.goto("/partner")
    page.wait_for_selector("#partner[data-ready]")
    page.select_option("#programme", programme)


def _verify(page: Page, text: str) -> None:
    page.fill("#typed-qr", text)
    page.click("#typed-form button[type=submit]")
    page.wait_for_selector("#guest-verdict[data-verdict]")


def _accessible(page: Page, name: str) -> None:
    assert serious_accessibility_violations(page) == [], name
    screenshot(page, name)


def test_verify_shows_only_the_partner_view_and_checks_in(page: Page, maker: CardMaker) -> None:
    card, = maker.issue(1)
    programme = _programme(maker, quota=5)
    _open(page, programme)
    _accessible(page, "partner-verify")
    _verify(page, card.qr)
    assert page.locator("#guest-verdict").get_attribute("data-verdict") == "OK"
    masked = page.locator("#guest-name").inner_text()
    assert "*" in masked and masked != card.member_name
    assert page.locator("#guest-id4").inner_text().strip()[-4:].isalnum()
    assert page.locator("#guest-eligibility").inner_text() == "符合资格"
    assert page.locator("#guest-quota").inner_text() == "5"
    shown = page.locator("main").inner_text()
    assert card.member_name not in shown and card.card_number not in shown

    page.click("#checkin")
    page.wait_for_selector("#checkin-result[data-checkin]")
    assert "剩余 4 个名额" in page.locator("#checkin-result").inner_text()
    assert _checkins(maker, card, programme) == 1
    _accessible(page, "partner-checked-in")


def test_double_submit_records_once(page: Page, maker: CardMaker) -> None:
    card, = maker.issue(1)
    programme = _programme(maker, quota=5)
    _open(page, programme)
    answers = page.evaluate(_DOUBLE_SUBMIT, {"url": "/partner/checkin", "key": f"web-{secrets.token_hex(8)}",
                                             "body": {"programme": programme, "qr": card.qr}})
    assert sorted(a["status"] for a in answers) == [200, 201]
    assert answers[0]["body"]["checkin_id"] == answers[1]["body"]["checkin_id"]
    assert _checkins(maker, card, programme) == 1


def test_another_bases_programme_is_refused(page: Page, maker: CardMaker) -> None:
    card, = maker.issue(1)
    other = maker.programme(f"web-{secrets.token_hex(4)}", base="base-huangshan", quota=5)
    _open(page, _programme(maker, quota=1))
    answers = page.evaluate(_DOUBLE_SUBMIT, {"url": "/partner/checkin", "key": f"web-{secrets.token_hex(8)}",
                                             "body": {"programme": other, "qr": card.qr}})
    assert [a["status"] for a in answers] == [403, 403]
    assert _checkins(maker, card, other) == 0
    listed = page.request.get(f"/partner/offline/eligibility/{other}")
    assert listed.status == 403 and "entries" not in listed.text()


def test_over_quota_is_a_clear_message(page: Page, maker: CardMaker) -> None:
    first, second = maker.issue(2)
    programme = _programme(maker, quota=1)
    _open(page, programme)
    _verify(page, first.qr)
    page.click("#checkin")
    page.wait_for_selector("#checkin-result[data-checkin]")
    _verify(page, second.qr)
    page.click("#checkin")
    page.wait_for_selector("#checkin-result[data-reason]")
    assert page.locator("#checkin-result").get_attribute("data-reason") == "quota_exhausted"
    assert "名额已满" in page.locator("#checkin-result").inner_text()
    assert _checkins(maker, second, programme) == 0


def test_not_our_qr_is_a_clear_message(page: Page, maker: CardMaker) -> None:
    _open(page, _programme(maker, quota=1))
    _verify(page, "UC1:THIS-IS-NOT-OURS")
    assert page.locator("#guest-verdict").get_attribute("data-verdict") == "NOK"
    assert page.locator("#guest-verdict").inner_text().strip() != ""
    assert page.locator("#checkin").is_hidden()


def test_expired_session_is_a_clear_message(page: Page, maker: CardMaker) -> None:
    card, = maker.issue(1)
    _open(page, _programme(maker, quota=1))
    page.context.clear_cookies()  # the session ends while the page is open
    _verify(page, card.qr)
    assert page.locator("#guest-verdict").get_attribute("data-reason") == "login_required"
    assert "登录已过期" in page.locator("#guest-verdict").inner_text()


def test_offline_check_in_is_synced_exactly_once(page: Page, maker: CardMaker) -> None:
    card, = maker.issue(1)
    programme = _programme(maker, quota=5)
    _open(page, programme)
    page.click("#download")
    page.wait_for_selector("#download-status[data-downloaded]")
    assert serious_accessibility_violations(page) == []  # loads axe-core while the network is there
    page.context.set_offline(True)
    page.wait_for_selector("#offline-banner:not([hidden])")
    _verify(page, card.qr)
    assert page.locator("#guest-verdict").get_attribute("data-verdict") == "OK"
    page.click("#checkin")
    page.wait_for_selector("#checkin-result[data-queued]")
    page.wait_for_selector("#pending-count[data-pending='1']")
    _accessible(page, "partner-offline")
    assert _checkins(maker, card, programme) == 0

    page.context.set_offline(False)
    page.wait_for_selector("#pending-count[data-pending='0']", timeout=20_000)
    assert _checkins(maker, card, programme, source="offline") == 1
    page.reload()  # the queue stays empty; nothing is sent twice
    page.wait_for_selector("#partner[data-ready]")
    assert page.locator("#pending-count").get_attribute("data-pending") == "0"
    assert _checkins(maker, card, programme) == 1


def test_page_reloads_with_no_network(page: Page, maker: CardMaker) -> None:
    """The service worker keeps the page and its scripts: reload offline, verify, queue, sync once."""
    card, = maker.issue(1)
    programme = _programme(maker, quota=5)
    _open(page, programme)
    assert page.locator("#partner").get_attribute("data-worker") == "registered"
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.click("#download")
    page.wait_for_selector("#download-status[data-downloaded]")
    page.reload()  # now under the worker's control: the page and every module pass through it
    page.wait_for_selector("#partner[data-ready]")
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector("#partner[data-ready]")
    network = "fetch('/partner/guests').then(() => 'reached', () => 'unreachable')"
    assert page.evaluate(network) == "unreachable"  # the page came from the worker's cache
    page.select_option("#programme", programme)
    _verify(page, card.qr)
    assert page.locator("#guest-verdict").get_attribute("data-verdict") == "OK"
    page.click("#checkin")
    page.wait_for_selector("#pending-count[data-pending='1']")
    page.context.set_offline(False)
    page.wait_for_selector("#pending-count[data-pending='0']", timeout=20_000)
    assert _checkins(maker, card, programme, source="offline") == 1


def test_phone_tap_page_at_375_px(phone_page: Page, live_server: LiveServer, maker: CardMaker) -> None:
    card, = maker.issue(1)
    programme = _programme(maker, quota=5)
    _open(phone_page, programme)
    phone_page.goto(maker.tap_url(card, live_server.url("/partner/sun")))
    phone_page.wait_for_selector("#partner[data-ready]")
    phone_page.wait_for_selector("#guest-verdict[data-verdict='OK']")
    phone_page.select_option("#programme", programme)  # the result follows the programme chosen
    assert phone_page.locator("#guest-quota").inner_text() == "5"
    assert "*" in phone_page.locator("#guest-name").inner_text()
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 375
    _accessible(phone_page, "partner-phone-tap")


def test_guests_and_check_out(page: Page, maker: CardMaker) -> None:
    card, = maker.issue(1)
    programme = _programme(maker, quota=5)
    _open(page, programme)
    _verify(page, card.qr)
    page.click("#checkin")
    checkin_id = page.locator("#checkin-result[data-checkin]").get_attribute("data-checkin")
    page.goto("/partner/guests")
    row = page.locator(f"#guests tr[data-checkin='{checkin_id}']")
    assert row.count() == 1 and card.member_name not in row.inner_text()
    _accessible(page, "partner-guests")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("#checked-out")
    assert page.locator(f"#guests tr[data-checkin='{checkin_id}'] button").count() == 0


# --- the camera -----------------------------------------------------------------------------------


def _y4m_of(text: str, target: Path) -> Path:
    """A one-frame Y4M video (640×480, 4:2:0) showing ``text`` as a QR code, for the fake camera."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=4)
    code = Image.open(buffer).convert("RGB")
    frame = Image.new("RGB", (640, 480), "white")
    frame.paste(code, ((640 - code.width) // 2, (480 - code.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (320, 240)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    target.write_bytes(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\nFRAME\n" + planes)
    return target


@pytest.fixture(scope="module")
def camera_card(maker: CardMaker) -> MemberCard:
    card, = maker.issue(1)
    return card


@pytest.fixture(scope="module")
def camera_browser(playwright_driver: Playwright, camera_card: MemberCard,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    video = _y4m_of(camera_card.qr, tmp_path_factory.mktemp("camera") / "qr.y4m")
    launched = playwright_driver.chromium.launch(
        executable_path=str(require_chromium()), headless=True,
        args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"])
    yield launched
    launched.close()


def test_camera_scan_verifies_the_guest(camera_browser: Browser, live_server: LiveServer,
                                        camera_card: MemberCard, maker: CardMaker) -> None:
    programme = _programme(maker, quota=5)
    context = camera_browser.new_context(base_url=live_server.base_url, locale="zh-CN",
                                         viewport={"width": 375, "height": 740})
    context.grant_permissions(["camera"], origin=live_server.base_url)
    page = context.new_page()
    try:
        _open(page, programme)
        page.click("#camera-start")
        page.wait_for_selector("#guest-verdict[data-verdict='OK']", timeout=20_000)
        assert page.locator("#typed-qr").input_value() == camera_card.qr
        page.click("#checkin")
        page.wait_for_selector("#checkin-result[data-checkin]")
        assert _checkins(maker, camera_card, programme) == 1
    finally:
        context.close()


# --- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/point", "/point/records", "/desk/import", "/desk/cards"])
def test_partner_session_cannot_open_other_pages(page: Page, path: str) -> None:
    login_as(page, Role.partner)
    response = page.goto(path)
    assert response is not None and response.status == 403


@pytest.mark.parametrize("role", [Role.service_point, Role.clerk])
def test_other_sessions_cannot_open_partner_pages(page: Page, login: Callable[[Page, Role], None],
                                                  role: Role) -> None:
    login(page, role)
    for path in ("/partner", "/partner/guests", "/partner/offline/bundle"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
