"""In Chromium: an expired session on a desk form loses nothing; a partner cannot open desk pages;
desk pages fit a 375-px phone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from cardsvc.verification.roles import Role
from cardsvc.web.session import SESSION_COOKIE
from tests.support.browser import STAFF, STAFF_PASSWORD

DESK_PAGES = ("/desk/import", "/desk/batches", "/desk/cards")


def test_expired_session_keeps_what_was_typed(page: Page, login: Callable[[Page, Role], None]) -> None:
    login(page, Role.clerk)
    page.goto("/desk/batches")
    page.fill("#label", "半途过期的批次")
    page.select_option("#batch-org", "G3")
    page.context.clear_cookies(name=SESSION_COOKIE)  # the server no longer knows the session
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": "expired-or-unknown", "url": page.url}])
    page.click("#batch-form button[type=submit]")
    assert "登录已过期" in page.locator("#login-message").inner_text()
    page.fill("#username", STAFF[Role.clerk][0])
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/desk/batches")
    assert page.input_value("#label") == "半途过期的批次"
    assert page.input_value("#batch-org") == "G3"
    assert page.locator("#drafts-restored").is_visible()


def test_partner_session_cannot_open_desk_pages(page: Page, login: Callable[[Page, Role], None]) -> None:
    login(page, Role.partner)
    assert all(entry not in page.locator("header nav").inner_text() for entry in ("制卡批次", "导入会员名单"))
    for path in DESK_PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        assert "无权" in page.locator("#error-message").inner_text()


@pytest.mark.parametrize("path", DESK_PAGES)
def test_desk_pages_fit_a_phone(phone_page: Page, login: Callable[[Page, Role], None], path: str) -> None:
    login(phone_page, Role.clerk)
    phone_page.goto(path)
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 375, path
