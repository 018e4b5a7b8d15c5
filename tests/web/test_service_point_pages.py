"""Service-point pages in Chromium against the live server (issue #6 item 4).

Cards are issued into the live server's database with its own keys (tests/web/point_cards.py);
the pages verify them with the server's real workflows:

* QR typed/scanned on the tap screen → the member (name, organisation, recent services) → record a
  service; the same form posted twice records it once;
* the phone tap's SUN link pasted on the tap screen → member → record; the same link again is
  refused as a replay;
* a tap at the point's terminal — ``cardsvc tap``'s own ``tap_once`` with its HTTP client and a token
  bound to this point, the real NTAG driver reading an emulated chip personalised by the real driver
  — appears on the open tap screen by itself, and a service can be recorded for it;
* today's records and the month's chart; axe-core finds no serious violations; 375-px layout;
* access: a service-point session cannot open partner or desk pages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page
from sqlalchemy import func, select

from cardsvc.cli.tap import HttpTapServer, tap_once
from cardsvc.config import get_settings
from cardsvc.registry.verification_models import ServiceRecord
from cardsvc.verification.roles import Role
from cardsvc.web.service_point import Bar, bar_lengths, looks_like_sun_url, sun_path
from tests.support.browser import LiveServer, screenshot, serious_accessibility_violations
from tests.support.cards import DirectConnection
from tests.web.point_cards import CardMaker, MemberCard

pytestmark = [pytest.mark.slow]
POINT = "sp-district-centre"


@pytest.fixture(scope="module")
def maker(live_server: LiveServer) -> Iterator[CardMaker]:
    made = CardMaker(get_settings(env="dev", data_dir=live_server.data_dir))
    yield made
    made.close()


def _records(maker: CardMaker, card: MemberCard) -> int:
    return maker.count(select(func.count()).select_from(ServiceRecord)
                       .where(ServiceRecord.card_number == card.card_number))  # type: ignore[arg-type]


def _accessible(page: Page, name: str) -> None:
    assert serious_accessibility_violations(page) == [], name
    screenshot(page, name)


def _verify(page: Page, text: str) -> None:
    page.fill("#verify-text", text)
    page.click("#verify-form button[type=submit]")
    page.wait_for_load_state()


def _record(page: Page, item: str) -> None:
    page.select_option("#record-item", item)
    page.click("#record-form button[type=submit]")
    page.wait_for_selector("#service-recorded")


def test_qr_then_record_once(page: Page, login: Callable[[Page, Role], None], maker: CardMaker) -> None:
    card, = maker.issue(1)
    login(page, Role.service_point)
    page.goto("/point")
    _accessible(page, "service-point-tap")
    _verify(page, card.qr)
    assert page.locator("#member").get_attribute("data-card") == card.card_number
    assert page.locator("#member-name").inner_text() == card.member_name
    assert page.locator("#member-org").inner_text().strip() != ""
    assert page.locator("#recent-services-none").is_visible()
    _accessible(page, "service-point-member")

    form = page.locator("#record-form")
    fields = {name: form.locator(f"[name={name}]").input_value() for name in ("csrf", "nonce", "card", "via")}
    _record(page, "legal_consultation")
    assert _records(maker, card) == 1
    assert "法律咨询" in page.locator("#recent-services").inner_text()

    again = page.request.post("/point/record", form={**fields, "item": "legal_consultation"})
    assert again.ok  # the first result again, with the "already submitted" notice
    assert _records(maker, card) == 1


def test_sun_link_then_record_and_replay_refused(page: Page, login: Callable[[Page, Role], None],
                                                 live_server: LiveServer, maker: CardMaker) -> None:
    card, = maker.issue(1)
    login(page, Role.service_point)
    page.goto("/point")
    link = maker.tap_url(card, live_server.url("/t"))
    _verify(page, link)
    assert page.locator("#member").get_attribute("data-card") == card.card_number
    _record(page, "consultation")
    assert _records(maker, card) == 1

    _verify(page, link)  # the same URL again: a copied link, not a tap
    assert page.locator("#tap-refused").get_attribute("data-reason") == "replay"
    assert "已被使用" in page.locator("#tap-refused").inner_text()


def test_phone_tap_page_then_record(phone_page: Page, login: Callable[[Page, Role], None],
                                    live_server: LiveServer, maker: CardMaker) -> None:
    """A staff phone signed in as the point opens the card's SUN link on this host."""
    card, = maker.issue(1)
    login(phone_page, Role.service_point)
    phone_page.goto(maker.tap_url(card, live_server.url("/point/sun")))
    assert phone_page.locator("#member").get_attribute("data-card") == card.card_number
    _record(phone_page, "activities")
    assert _records(maker, card) == 1


def test_bad_input_shows_a_message(page: Page, login: Callable[[Page, Role], None]) -> None:
    login(page, Role.service_point)
    page.goto("/point")
    _verify(page, "hello, this is not a card")
    assert page.locator("#tap-refused").is_visible()
    _verify(page, "UC1:NOT-OURS")
    assert page.locator("#tap-refused").is_visible()
    _verify(page, "https://cards.example/t?p=00&m=11")  # a truncated phone-tap link
    assert page.locator("#tap-refused").get_attribute("data-reason") == "sun_malformed"
    assert "不完整" in page.locator("#tap-refused").inner_text()
    page.goto("/point?card=290000000000")  # a card nobody verified here: no member, a message
    assert page.locator("#not-verified").is_visible() and page.locator("#member").count() == 0


def _terminal(live_server: LiveServer, point: str = POINT) -> tuple[str, str]:
    """A new ``cardsvc tap`` terminal client bound to ``point``: (client id, token)."""
    out = live_server.cli("clients", "create", "--label", "web test terminal", "--role", "service_point",
                          "--service-point", point, "--json")
    created = json.loads(out[out.index("{"):])
    return str(created["client_id"]), str(created["token"])


def _terminal_tap(live_server: LiveServer, maker: CardMaker, card: MemberCard,
                  token: str) -> dict[str, Any]:
    """``cardsvc tap``'s own code for one card: the real NTAG driver reads a fresh SUN from the
    emulated chip, the terminal's HTTP client sends challenge and proof to the live server."""
    chip = maker.chip(card, live_server.url("/t"))
    terminal = HttpTapServer(live_server.base_url, token)
    try:
        return tap_once(DirectConnection(chip), maker.profiles, terminal)
    finally:
        terminal.close()


def test_terminal_tap_appears_on_the_screen(page: Page, login: Callable[[Page, Role], None],
                                            live_server: LiveServer, maker: CardMaker) -> None:
    card, = maker.issue(1)
    login(page, Role.service_point)
    page.goto("/point")
    answer = _terminal_tap(live_server, maker, card, _terminal(live_server)[1])
    assert answer["outcome"] == "OK", answer
    page.wait_for_selector(f"#member[data-card='{card.card_number}']", timeout=10_000)
    assert page.locator("#member-name").inner_text() == card.member_name
    _record(page, "hardship_aid")
    assert _records(maker, card) == 1


def test_another_points_terminal_cannot_be_named(page: Page, login: Callable[[Page, Role], None],
                                                 live_server: LiveServer, maker: CardMaker) -> None:
    """A tap at another point's terminal neither shows here nor lets this point record for it."""
    card, = maker.issue(1)
    login(page, Role.service_point)
    page.goto("/point")
    elsewhere, token = _terminal(live_server, "sp-chengguan")
    assert _terminal_tap(live_server, maker, card, token)["outcome"] == "OK"
    page.goto(f"/point?card={card.card_number}")
    assert page.locator("#not-verified").is_visible()
    fields = {"csrf": page.locator("[name=csrf]").first.input_value(),
              "nonce": page.locator("#verify-form [name=nonce]").input_value()}
    forged = page.request.post("/point/record", form={**fields, "card": card.card_number,
                                                     "item": "consultation", "via": elsewhere})
    assert forged.status == 403
    assert _records(maker, card) == 0


def test_records_and_month_chart(page: Page, login: Callable[[Page, Role], None], maker: CardMaker) -> None:
    card, = maker.issue(1)
    login(page, Role.service_point)
    page.goto("/point")
    _verify(page, card.qr)
    _record(page, "education_training")
    page.goto("/point/records")
    assert page.locator(f"#today-records tr[data-card='{card.card_number}']").count() == 1
    bar = page.locator("#chart-items g[data-label='教育培训']")
    assert int(bar.get_attribute("data-count") or 0) >= 1
    assert page.locator("#chart-months g").count() >= 1
    _accessible(page, "service-point-records")


def test_phone_width(phone_page: Page, login: Callable[[Page, Role], None], maker: CardMaker) -> None:
    card, = maker.issue(1)
    login(phone_page, Role.service_point)
    phone_page.goto("/point")
    _verify(phone_page, card.qr)
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 375
    assert serious_accessibility_violations(phone_page) == []
    screenshot(phone_page, "service-point-phone")
    phone_page.goto("/point/records")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 375


def test_english_switch(page: Page, login: Callable[[Page, Role], None]) -> None:
    login(page, Role.service_point)
    page.goto("/lang?to=en&next=/point")
    assert page.locator("h1").inner_text() == "Member tap screen"
    page.goto("/point/records")
    assert page.locator("h1").inner_text() == "Today's records"


def test_sun_links_and_bar_lengths() -> None:
    assert looks_like_sun_url("https://cards.example/t?p=00AA&m=11BB")
    assert not looks_like_sun_url("UC1:ABC") and not looks_like_sun_url("https://cards.example/t?p=00")
    assert sun_path(" https://cards.example/t?p=00AA&m=11BB ") == "/t?p=00AA&m=11BB"
    assert bar_lengths([Bar("a", 4), Bar("b", 1), Bar("c", 0)], 300) == [300, 75, 0]
    assert bar_lengths([], 300) == [] and bar_lengths([Bar("a", 0)], 300) == [0]


@pytest.mark.parametrize("path", ["/partner", "/partner/guests", "/desk/import", "/desk/cards"])
def test_service_point_session_cannot_open_other_pages(page: Page, login: Callable[[Page, Role], None],
                                                       path: str) -> None:
    login(page, Role.service_point)
    response = page.goto(path)
    assert response is not None and response.status == 403


@pytest.mark.parametrize("role", [Role.partner, Role.clerk])
def test_other_sessions_cannot_open_service_point_pages(page: Page, login: Callable[[Page, Role], None],
                                                        role: Role) -> None:
    login(page, role)
    for path in ("/point", "/point/records", "/point/latest"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
