"""Smoke test of the browser harness: Debian's Chromium opens a page of the live server."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.support.browser import PHONE, LiveServer


def test_chromium_renders_the_tap_page_of_the_live_server(page: Page, live_server: LiveServer) -> None:
    response = page.goto("/t?p=00&m=00")
    assert response is not None and response.status in (400, 422)
    assert page.locator("h1").inner_text().startswith("✘")
    assert page.evaluate("navigator.userAgent").find("HeadlessChrome") >= 0


def test_phone_page_is_375_px_wide(phone_page: Page) -> None:
    phone_page.goto("/healthz")
    assert phone_page.evaluate("window.innerWidth") == PHONE["width"]
