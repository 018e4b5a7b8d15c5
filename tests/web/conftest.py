"""Web page fixtures: the browser harness of tests/support/browser.py (Chromium + a live server)
and ``site``, the composed app in process (tests/web/support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import browser, live_server, login, page, phone_page, playwright_driver
from tests.web.support import Site, make_site

__all__ = ["browser", "live_server", "login", "page", "phone_page", "playwright_driver", "site"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with make_site(tmp_path_factory.mktemp("web-site")) as made:
        yield made
