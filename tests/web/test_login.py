"""Sign-in, sessions, CSRF and error pages through the composed app (in process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cardsvc.verification.roles import Role
from cardsvc.web.session import SESSION_COOKIE
from tests.support.browser import STAFF
from tests.web.support import Site, csrf_in, make_site


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Site]:
    with make_site(tmp_path) as made:
        yield made


def test_login_sets_a_strict_httponly_session_cookie_and_shows_user_and_role(fresh: Site) -> None:
    response = fresh.login(Role.clerk)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # dev: http
    home = fresh.get("/")
    assert home.status_code == 200 and 'data-user="clerk1"' in home.text and "制卡员乙" in home.text
    assert home.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]


def test_wrong_password_is_a_page_not_a_redirect_and_locks_after_five(fresh: Site) -> None:
    for _ in range(5):
        refused = fresh.login(Role.clerk, password="not the password")
        assert refused.status_code == 401 and "用户名或密码错误" in refused.text
    locked = fresh.login(Role.clerk)
    assert locked.status_code == 401 and "锁定 15 分钟" in locked.text
    assert fresh.login(Role.admin).status_code == 303  # other accounts are unaffected


def test_login_form_needs_its_csrf_cookie(fresh: Site) -> None:
    response = fresh.post("/login", data={"username": "clerk1", "password": "x" * 12, "csrf": "forged"})
    assert response.status_code == 403 and "表单已失效" in response.text


def test_posts_need_the_session_csrf_token(fresh: Site) -> None:
    fresh.login(Role.admin)
    assert fresh.post("/logout", data={}).status_code == 403
    assert fresh.post("/logout", data={"csrf": "0" * 64}).status_code == 403
    assert fresh.post("/logout", headers={"X-CSRF-Token": fresh.csrf()}).status_code == 303


def test_logout_deletes_the_session_on_the_server(fresh: Site) -> None:
    fresh.login(Role.partner)
    token = fresh.client.cookies[SESSION_COOKIE]
    csrf = fresh.csrf()
    out = fresh.post("/logout", data={"csrf": csrf})
    assert out.headers["location"] == "/login?why=signed_out"
    fresh.client.cookies.set(SESSION_COOKIE, token)  # a copied cookie is dead too
    again = fresh.get("/")
    assert again.status_code == 303 and again.headers["location"].startswith("/login?why=expired")


def test_expired_session_goes_to_login_with_a_message_and_back(fresh: Site) -> None:
    fresh.client.cookies.set(SESSION_COOKIE, "stale-session-id")
    response = fresh.get("/?x=1")
    assert response.headers["location"] == "/login?why=expired&next=/%3Fx%3D1"
    page = fresh.get(response.headers["location"])
    assert "登录已过期" in page.text and 'name="next" value="/?x=1"' in page.text
    done = fresh.post("/login", data={"username": STAFF[Role.clerk][0], "password": _password(),
                                      "csrf": csrf_in(page.text), "next": "/?x=1"})
    assert done.headers["location"] == "/?x=1"


def test_next_never_leaves_the_site(fresh: Site) -> None:
    page = fresh.get("/login?next=//evil.example/")
    assert 'name="next" value="/"' in page.text
    assert fresh.get("/lang?to=en&next=https://evil.example/").headers["location"] == "/"


def test_language_switch_and_english_pages(fresh: Site) -> None:
    fresh.get("/lang?to=en&next=/login")
    page = fresh.get("/login")
    assert '<html lang="en">' in page.text and "Staff sign-in" in page.text


def test_unknown_page_and_bad_input_are_pages_without_tracebacks(fresh: Site) -> None:
    missing = fresh.get("/login/nothing-here")
    assert missing.status_code == 404 and "找不到" in missing.text and "Traceback" not in missing.text
    fresh.login(Role.clerk)
    bad = fresh.post("/login", data={"csrf": "x"})
    assert bad.status_code in (403, 422) and "Traceback" not in bad.text


def test_the_api_is_still_served_beside_the_pages(fresh: Site) -> None:
    assert fresh.get("/healthz").json()["status"] == "ok"
    assert fresh.get("/v1/whoami").headers["content-type"].startswith("application/problem+json")


def _password() -> str:
    from tests.support.browser import STAFF_PASSWORD

    return STAFF_PASSWORD


def test_cookies_are_secure_in_production(tmp_path: Path) -> None:
    from cardsvc.config import get_settings
    from cardsvc.registry.staff import StaffAccounts
    from cardsvc.web.context import WebContext

    production = get_settings(env="production", data_dir=tmp_path, key_passphrase="a real secret here")
    context = WebContext(settings=production, sessions=lambda: None,  # type: ignore[arg-type,return-value]
                         accounts=StaffAccounts(lambda: None))  # type: ignore[arg-type,return-value]
    assert context.secure_cookies
    assert not WebContext(settings=get_settings(env="dev", data_dir=tmp_path), sessions=context.sessions,
                          accounts=context.accounts).secure_cookies
