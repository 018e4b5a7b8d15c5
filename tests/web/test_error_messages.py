"""Error pages speak the page's language and never show an exception's own text.

The test walks the whole error tree (:class:`cardsvc.errors.CardsvcError` and the subclasses the
web and registry layers add): every error a page can show has a catalog message in zh-CN and
English (its own, or the generic one naming the code), and every one of them, rendered through the
pages' real handlers, shows neither its English message, nor a Python class name, nor a traceback.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import cardsvc.web.app  # noqa: F401  (loads every page module, so the tree is complete)
from cardsvc import errors
from cardsvc.config import get_settings
from cardsvc.registry.staff import LoginRefused
from cardsvc.verification.roles import Role
from cardsvc.web.context import WebContext
from cardsvc.web.i18n import LANG_COOKIE, MESSAGES, Lang, translate
from cardsvc.web.problems import GENERIC_PROBLEM, install_page_handlers, page_problem, page_status
from cardsvc.web.session import CsrfRefused, LoginRequired
from tests.web.support import make_site

SECRET = "INTERNAL /srv/cardsvc/registry/db.py OperationalError secret-detail"
# The codes users meet on pages: each has its own message, not the generic one.
PAGE_CODES = ("not_found", "conflict", "invalid_record", "import_file", "permission_denied", "csrf",
              "rate_limited", "not_configured", "registry", "issuance", "server_unavailable",
              "malformed_credential", "credential_invalid")
REASONS = {  # reasons raised in the code base for the page-reachable errors that carry one
    errors.NotFound: ("unknown_card", "unknown_member", "unknown_staff_user", "unknown_report",
                      "unknown_profile", "unknown_action", "unknown_service_point",
                      "unknown_partner_base", "unknown_programme", "unknown_item", "unknown_checkin"),
    errors.Conflict: ("concurrent_change", "duplicate_username", "own_account", "quota_exhausted",
                      "already_checked_in", "already_checked_out", "no_recent_verification",
                      "idempotency_key_reused"),
}
# No error's own message is shown: an invalid record shows its field's label, a catalog reason and
# only the ``value`` it was given (none here; tests/web/test_form_errors.py covers the value).
ECHOES_INPUT: tuple[type[errors.CardsvcError], ...] = ()
_ARGS: dict[str, Any] = {"reason": "some_reason", "field": "quota", "retry_after": 7, "file": "p.toml",
                         "sw": 0x6A82, "index": 0}


def _tree(cls: type[errors.CardsvcError] = errors.CardsvcError) -> Iterator[type[errors.CardsvcError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _tree(sub)


def _make(cls: type[errors.CardsvcError], **override: Any) -> errors.CardsvcError:
    """An instance of ``cls`` carrying :data:`SECRET` as its message."""
    params = inspect.signature(cls.__init__).parameters
    kwargs = {name: override.get(name, _ARGS[name]) for name, p in params.items()
              if p.kind is p.KEYWORD_ONLY and (p.default is p.empty or name in override)}
    return cls(SECRET, **kwargs) if "message" in params else cls(**kwargs)


def _instances() -> list[errors.CardsvcError]:
    made = [_make(cls) for cls in _tree()]
    made += [_make(cls, reason=reason) for cls, reasons in REASONS.items() for reason in reasons]
    made.append(errors.RegistryError(SECRET))
    return made


def _id(exc: errors.CardsvcError) -> str:
    return f"{type(exc).__name__}-{getattr(exc, 'reason', '') or ''}"


INSTANCES = _instances()
IDS = [_id(e) for e in INSTANCES]
SHOWN = [e for e in INSTANCES if page_status(e) is not None]  # the rest are internal (500 + id)


def test_the_walk_covers_the_tree_and_the_page_codes() -> None:
    classes = {type(e) for e in INSTANCES}
    tree_module = {cls for cls in _tree() if cls.__module__ == "cardsvc.errors"}
    assert classes >= tree_module | {CsrfRefused, LoginRequired, LoginRefused} and len(classes) > 30
    reachable = {e.code for e in INSTANCES if page_status(e) is not None}
    assert set(PAGE_CODES) <= reachable
    for code in PAGE_CODES:
        assert f"problem.{code}" in MESSAGES, code


@pytest.mark.parametrize("exc", SHOWN, ids=[_id(e) for e in SHOWN])
def test_every_page_error_has_both_languages_or_the_generic_message(exc: errors.CardsvcError) -> None:
    key, values = page_problem(exc)
    for lang in Lang:
        text = translate(lang, key, **values)
        assert text and type(exc).__name__ not in text
        assert (SECRET in text) == isinstance(exc, ECHOES_INPUT)
        if key == GENERIC_PROBLEM:
            assert exc.code in text
    reason = getattr(exc, "reason", None)
    if type(exc) in REASONS and reason in REASONS[type(exc)]:
        assert key == f"problem.{exc.code}.{reason}"


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The pages' real error handlers and templates, with one route raising each instance."""
    settings = get_settings(env="dev", data_dir=tmp_path_factory.mktemp("errors"))
    app = FastAPI()
    app.state.web = WebContext(settings=settings, sessions=None, accounts=None)  # type: ignore[arg-type]
    install_page_handlers(app)

    @app.get("/boom/{index}")
    def boom(index: int) -> None:
        if index < 0:
            raise RuntimeError(SECRET)
        raise INSTANCES[index]

    return app


def _get(app: FastAPI, path: str, lang: Lang) -> httpx.Response:
    """GET on a thread of its own (a Playwright driver may hold this thread's event loop)."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     cookies={LANG_COOKIE: lang.value}) as client:
            return await client.get(path)

    with ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, run()).result()


@pytest.mark.parametrize("index", range(len(INSTANCES)), ids=IDS)
@pytest.mark.parametrize("lang", list(Lang), ids=[lang.value for lang in Lang])
def test_no_error_page_shows_internals(pages: FastAPI, index: int, lang: Lang) -> None:
    exc = INSTANCES[index]
    response = _get(pages, f"/boom/{index}", lang)
    if isinstance(exc, errors.AuthenticationRequired) and exc.code == "login_required":
        assert response.status_code == 303 and response.headers["location"].startswith("/login?why=")
        return
    status = page_status(exc)
    assert response.status_code == (status or 500)
    body = response.text
    assert (SECRET in body) == isinstance(exc, ECHOES_INPUT)
    assert "Traceback" not in body and type(exc).__name__ not in body
    key, values = page_problem(exc) if status else ("", {})
    if status:
        assert translate(lang, key, **values) in body.replace("&#39;", "'")
    else:
        assert ("服务器内部错误" if lang is Lang.zh else "Internal error: quote") in body
    assert f'lang="{lang.value}"' in body


def test_rate_limited_pages_say_when_to_come_back(pages: FastAPI) -> None:
    index = next(i for i, e in enumerate(INSTANCES) if isinstance(e, errors.RateLimited))
    response = _get(pages, f"/boom/{index}", Lang.zh)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert "请 7 秒后再试" in response.text


def test_an_unexpected_exception_is_a_500_page_with_an_id_only(pages: FastAPI) -> None:
    response = _get(pages, "/boom/-1", Lang.en)
    assert response.status_code == 500 and SECRET not in response.text and "RuntimeError" not in response.text
    assert "Traceback" not in response.text


def test_a_chinese_page_never_shows_the_english_message(tmp_path: Path) -> None:
    """Through the composed app: a card page for a number that does not exist."""
    with make_site(tmp_path) as site:
        site.login(Role.clerk)
        response = site.get("/desk/cards/000000000000")
        site.client.cookies.set(LANG_COOKIE, "en")
        english = site.get("/desk/cards/000000000000")
    assert response.status_code == english.status_code == 404
    assert "找不到此页面或记录。" in response.text and "No such page or record." in english.text
    shown = response.text.split('id="error-message">', 1)[1].split("</p>", 1)[0]
    assert shown == "找不到此页面或记录。"  # not the error's own (English) message
