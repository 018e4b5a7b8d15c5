"""Every page × every role (and no session), generated from the one access table PAGES.

Denied roles get 403; no session is sent to the login page; allowed roles are let through (whatever
the page then answers, never 403 nor the login redirect). The table and the app's page routes must
name the same pages, and an app with a page missing from the table refuses to start.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import APIRouter

from cardsvc.api.app import api_routes
from cardsvc.config import get_settings
from cardsvc.errors import ConfigError
from cardsvc.verification.roles import Role
from cardsvc.web import app as web_app
from cardsvc.web.access import PAGES
from tests.web.support import Site

_PARAM = re.compile(r"\{[^}]+\}")
ENDS_SESSION = frozenset({"logout"})
CASES = [(name, role) for name in PAGES for role in (*Role, None)]


def _pages(site: Site) -> dict[str, tuple[str, frozenset[str]]]:
    return {r.name: (r.path, r.methods) for r in api_routes(site.app.pages)}


@pytest.fixture(scope="module")
def sessions(site: Site) -> Iterator[dict[Role | None, tuple[object, str]]]:
    """One logged-in client (and its CSRF token) per role, plus an anonymous one."""
    made: dict[Role | None, tuple[object, str]] = {}
    original = site.client
    for role in Role:
        site.client = site.fresh_client()
        assert site.login(role).status_code == 303
        made[role] = (site.client, site.csrf("/"))
    site.client = site.fresh_client()
    made[None] = (site.client, "")
    site.client = original
    yield made


def test_table_and_routes_name_the_same_pages(site: Site) -> None:
    assert set(_pages(site)) == set(PAGES)


IDS = [f"{n}-{r.value if r else 'anonymous'}" for n, r in CASES]


@pytest.mark.parametrize(("name", "role"), CASES, ids=IDS)
def test_page_access(site: Site, sessions: dict[Role | None, tuple[object, str]], name: str,
                     role: Role | None) -> None:
    path, methods = _pages(site)[name]
    path = _PARAM.sub("00000000", path)
    client, csrf = sessions[role]
    site.client = client  # type: ignore[assignment]
    if name in ENDS_SESSION and role is not None:  # sign out a throw-away session, not the shared one
        site.client = site.fresh_client()
        site.login(role)
        csrf = site.csrf("/")
    method = "POST" if "POST" in methods else "GET"
    response = site.post(path, data={"csrf": csrf}) if method == "POST" else site.get(path)
    policy = PAGES[name]
    location = response.headers.get("location", "")
    if policy.public:
        assert response.status_code != 403 or method == "POST"  # a public POST still needs its CSRF
        return
    if role is None:
        assert response.status_code == 303 and location.startswith("/login?why=required")
    elif role in policy.roles:
        assert response.status_code != 403 and not location.startswith(("/login?why=required",
                                                                          "/login?why=expired"))
    else:
        assert response.status_code == 403 and "无权" in response.text


def test_a_page_missing_from_the_table_refuses_to_start(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    rogue = APIRouter()

    @rogue.get("/rogue", name="rogue_page")
    def rogue_page() -> str:
        return "nobody checked me"

    module = type("M", (), {"router": rogue})
    monkeypatch.setattr(web_app, "PAGE_MODULES", (*web_app.PAGE_MODULES, "rogue"))
    real_import = web_app.importlib.import_module
    monkeypatch.setattr(web_app.importlib, "import_module",
                        lambda name: module if name == "rogue" else real_import(name))
    from cardsvc.api.services import in_memory_services

    settings = get_settings(env="test", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="rogue_page"):
        web_app.create_pages(settings, in_memory_services(settings))
