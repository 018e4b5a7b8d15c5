"""In Chromium: each role signs in through the form and sees its name, role and navigation; the
login page fits a 375-px phone; the language switch works; logout ends the session."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from cardsvc.verification.roles import Role
from tests.support.browser import STAFF, screenshot, serious_accessibility_violations


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_each_role_signs_in_and_sees_itself(page: Page, login: Callable[[Page, Role], None],
                                            role: Role) -> None:
    login(page, role)
    who = page.locator("[data-user]")
    assert who.get_attribute("data-user") == STAFF[role][0]
    assert who.get_attribute("data-role") == role.value
    assert STAFF[role][1] in who.inner_text()


def test_login_page_fits_a_phone_and_switches_language(phone_page: Page) -> None:
    phone_page.goto("/login")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 375
    assert phone_page.locator("label[for=username]").is_visible()
    phone_page.click("a.lang")
    assert phone_page.locator("html").get_attribute("lang") == "en"
    assert phone_page.locator("h1").inner_text() == "Staff sign-in"
    phone_page.click("a.lang")
    assert phone_page.locator("h1").inner_text() == "工作人员登录"


def test_wrong_password_shows_a_message_in_the_page(page: Page) -> None:
    page.goto("/login")
    page.fill("#username", "partner1")
    page.fill("#password", "certainly not it")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.locator("#login-message").inner_text()


def test_logout_ends_the_session(page: Page, login: Callable[[Page, Role], None]) -> None:
    login(page, Role.clerk)
    page.click("text=退出登录")
    assert "您已退出登录" in page.locator("#login-message").inner_text()
    page.goto("/")
    assert page.url.endswith("/login?why=required&next=/")


def test_frame_pages_pass_axe(page: Page, login: Callable[[Page, Role], None]) -> None:
    """The login page, the home page and an error page: no serious or critical axe violations."""
    page.goto("/login?why=expired")
    assert serious_accessibility_violations(page) == []
    screenshot(page, "login")
    login(page, Role.clerk)
    page.goto("/")
    assert serious_accessibility_violations(page) == []
    page.goto("/desk/cards/000000000000")
    assert page.locator("#error-message").is_visible()
    assert serious_accessibility_violations(page) == []


def test_keyboard_focus_is_visible(page: Page) -> None:
    page.goto("/login")
    page.focus("#username")
    page.keyboard.press("Tab")  # keyboard focus: the :focus-visible outline must show
    assert page.evaluate("document.activeElement.id") == "password"
    style = page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                          " return [s.outlineStyle, s.outlineWidth]; })()")
    assert style == ["solid", "3px"]
