"""A refused admin form says which field and why in the page's language: the field's label and a
short reason from the catalog (zh-CN, English under the language switch), never pydantic's or the
service's English detail inside the Chinese text."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import cardsvc
from cardsvc.errors import InvalidRecord
from cardsvc.verification.roles import Role
from cardsvc.web.i18n import LANG_COOKIE, MESSAGES, Lang, translate
from cardsvc.web.problems import invalid_field, page_problem
from tests.support.browser import STAFF_PASSWORD
from tests.web.support import Site, csrf_in

_NONCE = re.compile(r'name="nonce" value="([^"]+)"')
_SHOWN = re.compile(r'id="error-message">(.*?)</p>', re.S)
# What used to leak: pydantic's and the services' own English.
ENGLISH_DETAIL = re.compile(r"String should|Input should|required for|characters|ends before|"
                            r"string_too_long|value_error|\bbody\b")


@pytest.fixture(scope="module")
def admin(site: Site) -> Iterator[Site]:
    site.client = site.fresh_client()
    assert site.login(Role.admin).status_code == 303
    yield site


def form_of(site: Site, path: str, form_id: str) -> dict[str, str]:
    html = site.get(path).text
    nonce = _NONCE.search(html, html.index(f'id="{form_id}"'))
    assert nonce, f"no nonce in {form_id}"
    return {"csrf": csrf_in(html), "nonce": nonce.group(1)}


def shown(answer: httpx.Response) -> str:
    assert answer.status_code == 422, answer.status_code
    found = _SHOWN.search(answer.text)
    assert found, "no error message on the page"
    return found.group(1)


def in_both(site: Site, send: Callable[[], httpx.Response]) -> tuple[str, str]:
    chinese = shown(send())
    site.client.cookies.set(LANG_COOKIE, Lang.en.value)
    try:
        english = shown(send())
    finally:
        site.client.cookies.delete(LANG_COOKIE)
    assert not ENGLISH_DETAIL.search(chinese), chinese
    assert not re.search(r"[\u4e00-\u9fff]", english), english
    return chinese, english


def test_a_too_long_label_names_the_field_and_the_limit(admin: Site) -> None:
    def send() -> httpx.Response:
        data = {**form_of(admin, "/admin/clients", "client-form"), "label": "x" * 81, "role": "clerk"}
        return admin.post("/admin/clients", data=data)

    chinese, english = in_both(admin, send)
    assert "说明：太长（最多 80 个字符）" in chinese
    assert "Label: too long (at most 80 characters)" in english


def test_a_choice_not_offered_and_a_missing_field_are_named(admin: Site) -> None:
    def send() -> httpx.Response:
        data = {**form_of(admin, "/admin/staff", "staff-form"), "username": "nobody9", "role": "boss",
                "password": STAFF_PASSWORD}
        return admin.post("/admin/staff", data=data)

    chinese, english = in_both(admin, send)
    assert "角色：不是可选的值" in chinese and "显示名称：必须填写" in chinese and "；" in chinese
    assert "Role: not one of the choices" in english and "Display name: required" in english


def test_a_binding_the_role_needs_is_named(admin: Site) -> None:
    def send() -> httpx.Response:
        data = {**form_of(admin, "/admin/clients", "client-form"), "label": "no base", "role": "partner"}
        return admin.post("/admin/clients", data=data)

    chinese, english = in_both(admin, send)
    assert "疗休养基地：此角色必须选择" in chinese
    assert "Partner base: required for this role" in english


def test_a_service_refusal_is_localised_and_keeps_the_value_typed(admin: Site) -> None:
    def send() -> httpx.Response:
        data = {**form_of(admin, "/admin/places", "programme-form"), "code": "p-form", "name": "x",
                "base_code": "base-nowhere", "starts_on": "2026-05-01", "ends_on": "2026-05-31",
                "quota": "5"}
        return admin.post("/admin/programmes", data=data)

    chinese, english = in_both(admin, send)
    assert "疗休养基地：没有此合作基地（base-nowhere）" in chinese
    assert "Partner base: no such partner base (base-nowhere)" in english


def test_a_date_and_a_bound_are_named(admin: Site) -> None:
    def send() -> httpx.Response:
        data = {**form_of(admin, "/admin/places", "programme-form"), "code": "p-form", "name": "x",
                "base_code": "base-beidaihe", "starts_on": "May 1st", "ends_on": "2026-05-31",
                "quota": "-1"}
        return admin.post("/admin/programmes", data=data)

    chinese, english = in_both(admin, send)
    assert "开始日期：应为日期，如 2026-03-01" in chinese and "名额：不能小于 0" in chinese
    assert "Start date: must be a date, e.g. 2026-03-01" in english and "Quota: must be at least 0" in english


@pytest.mark.parametrize("lang", list(Lang))
def test_an_unknown_field_or_reason_falls_back_to_its_name_and_the_generic_reason(lang: Lang) -> None:
    key, values = page_problem(InvalidRecord("some English detail", field="widget", reason="odd"))
    text = translate(lang, key, **values)
    assert "widget" in text and translate(lang, "invalid.invalid") in text and "English detail" not in text
    bare = translate(lang, "invalid.item", **invalid_field("quota", "string_too_long").values)
    assert bare == translate(lang, "invalid.item", field=translate(lang, "field.quota"),
                             reason=translate(lang, "invalid.invalid"))  # no bound given: no number


def test_every_reason_raised_for_an_admin_form_has_a_message() -> None:
    root = Path(cardsvc.__file__).parent
    sources = [root / "web" / "admin.py", root / "web" / "pages" / "admin_setup.py",
               root / "registry" / "staff.py", root / "verification" / "tokens.py"]
    reasons: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "InvalidRecord":
                for keyword in node.keywords:
                    if keyword.arg == "reason":
                        reasons |= {c.value for c in ast.walk(keyword.value)
                                    if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    assert len(reasons) > 10
    assert {r for r in reasons if f"invalid.{r}" not in MESSAGES} == set()
