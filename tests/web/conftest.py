"""Web page fixtures: the browser harness of tests/support/browser.py (Chromium + a live server)."""

from __future__ import annotations

from tests.support.browser import browser, live_server, login, page, phone_page, playwright_driver

__all__ = ["browser", "live_server", "login", "page", "phone_page", "playwright_driver"]
