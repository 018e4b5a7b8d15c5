"""verify.js decides "programme running" on the same local day as the server (``CARDSVC_TIMEZONE``).

The eligibility list names the zone; the browser runs in another zone (Los Angeles) to show the
device's own zone plays no part. Each instant is decided by ``checkEligibility`` in Chromium and by
the server's :func:`ineligibility` on :func:`local_date`, and both must give the expected answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page
from sqlmodel import Session

from cardsvc.localtime import local_date
from cardsvc.registry.verification_models import Programme
from cardsvc.verification.recuperation import PSEUDONYM_SIZE, ineligibility, pseudonym

from .conftest import StaticServer

SHANGHAI = ZoneInfo("Asia/Shanghai")
GUEST = "202600012345"
LIST_KEY = bytes(range(32))
PROGRAMME = Programme(code="rest-2026-q4", base_code="base-beidaihe", name="rest", quota=1,
                      starts_on=dt.date(2026, 11, 24), ends_on=dt.date(2026, 12, 24))

_CHECK = """async ({ list, guest, iso }) => {
  const v = await import("/js/offline/verify.js");
  return (await v.checkEligibility(list, guest, new Date(iso))).reason;
}"""

CASES = [  # (zone name, local instant, expected reason)
    ("Asia/Shanghai", dt.datetime(2026, 11, 24, 0, 30, tzinfo=SHANGHAI), None),  # 16:30Z the day before
    ("Asia/Shanghai", dt.datetime(2026, 12, 24, 23, 30, tzinfo=SHANGHAI), None),
    ("Asia/Shanghai", dt.datetime(2026, 12, 25, 0, 30, tzinfo=SHANGHAI), "programme_not_running"),
    ("Asia/Shanghai", dt.datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI), "programme_not_running"),
    ("UTC", dt.datetime(2026, 11, 24, 0, 30, tzinfo=SHANGHAI), "programme_not_running"),  # the old rule
]


@pytest.fixture
def la_page(browser: Browser, static_server: StaticServer) -> Iterator[Page]:
    context = browser.new_context(base_url=static_server.base_url, timezone_id="America/Los_Angeles")
    page = context.new_page()
    page.goto("/")
    yield page
    context.close()


@pytest.mark.parametrize(("zone", "at", "expected"), CASES)
def test_browser_and_server_decide_the_same_local_day(la_page: Page, zone: str, at: dt.datetime,
                                                      expected: str | None) -> None:
    eligibility = {"programme": PROGRAMME.code, "base": PROGRAMME.base_code,
                   "starts_on": PROGRAMME.starts_on.isoformat(), "ends_on": PROGRAMME.ends_on.isoformat(),
                   "timezone": zone, "list_key": LIST_KEY.hex(), "pseudonym_bytes": PSEUDONYM_SIZE,
                   "entries": [pseudonym(LIST_KEY, GUEST).hex()]}
    iso = at.astimezone(dt.UTC).isoformat()
    browser = la_page.evaluate(_CHECK, {"list": eligibility, "guest": GUEST, "iso": iso})
    with Session() as unused:  # a running programme without lists or categories reads nothing
        server = ineligibility(unused, PROGRAMME, 0, local_date(at, ZoneInfo(zone)))
    assert (browser, server) == (expected, expected)
