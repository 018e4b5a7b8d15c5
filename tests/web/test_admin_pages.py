"""Admin pages (issue #6 item 6): clients and tokens, staff users, service points/items, partner
bases/programmes, consent and erasure, dashboards and the audit-chain status.

In process (``site``, httpx on the composed app) for the rules: refusals, one-time tokens, double
submissions, audit rows, validation. In Chromium against ``cardsvc serve`` (``live_server``) for
each flow end to end, the axe check, the 375-px layout and the screenshots in docs/img/.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, select, text, update
from sqlmodel import Session

from cardsvc.api.app import api_routes
from cardsvc.config import get_settings
from cardsvc.credential.keystore import open_key_store
from cardsvc.demo.base import DEMO_PROGRAMME
from cardsvc.registry.cards import Batch, Card, CardStatus, JournalState
from cardsvc.registry.db import engine_for, session_factory
from cardsvc.registry.keys import cipher_from_store
from cardsvc.registry.models import Member, MemberStatus
from cardsvc.registry.services import RegistryService
from cardsvc.registry.verification_models import (
    ApiClient,
    AuditLogRow,
    Checkin,
    Programme,
    ProgrammeMember,
    ServiceRecord,
)
from cardsvc.verification.roles import Role
from cardsvc.verification.seed import seed_reference_data
from cardsvc.web.access import PAGES
from tests.support.browser import (
    STAFF_PASSWORD,
    LiveServer,
    screenshot,
    serious_accessibility_violations,
)
from tests.web.support import Site, csrf_in

ADMIN_PAGES = sorted(name for name, policy in PAGES.items() if name.startswith("admin_"))
OTHERS: tuple[Role | None, ...] = (Role.clerk, Role.service_point, Role.partner, None)
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')
_PARAM = re.compile(r"\{[^}]+\}")


def test_the_admin_pages_are_for_admins_only() -> None:
    assert len(ADMIN_PAGES) == 22
    for name in ADMIN_PAGES:
        assert PAGES[name].roles == frozenset({Role.admin}), name


# --- in process ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(site: Site) -> Iterator[Site]:
    with Session(site.engine) as session, session.begin():
        seed_reference_data(session)  # the points and bases staff and clients are bound to
    site.client = site.fresh_client()
    assert site.login(Role.admin).status_code == 303
    yield site


def form_of(site: Site, path: str, form_id: str) -> dict[str, str]:
    """The CSRF token and a fresh nonce of the form ``form_id`` on the page at ``path``."""
    html = site.get(path).text
    start = html.index(f'id="{form_id}"')
    nonce = _NONCE.search(html, start)
    assert nonce, f"no nonce in {form_id}"
    return {"csrf": csrf_in(html), "nonce": nonce.group(1)}


def audit_rows(site: Site, event_type: str) -> list[AuditLogRow]:
    with Session(site.engine) as session:
        query = select(AuditLogRow).where(AuditLogRow.event_type == event_type).order_by(AuditLogRow.seq)
        return list(session.scalars(query))


@pytest.mark.parametrize("role", OTHERS, ids=lambda r: r.value if r else "anonymous")
def test_non_admins_are_refused_on_every_admin_page(site: Site, role: Role | None) -> None:
    client = site.fresh_client()
    site.client, original = client, site.client
    try:
        csrf = ""
        if role is not None:
            assert site.login(role).status_code == 303
            csrf = site.csrf("/")
            assert "/admin" not in site.get("/").text  # no admin links in the header either
        routes = {r.name: r for r in api_routes(site.app.pages)}
        for name in ADMIN_PAGES:
            route = routes[name]
            path = _PARAM.sub("someone", route.path)
            is_post = "POST" in route.methods
            answer = site.post(path, data={"csrf": csrf}) if is_post else site.get(path)
            if role is None:
                assert answer.status_code == 303, name
                assert answer.headers["location"].startswith("/login?why=required"), name
            else:
                assert answer.status_code == 403, name
                assert "无权" in answer.text, name
    finally:
        site.run(client.aclose())
        site.client = original


def test_a_client_token_is_shown_once_and_a_second_submit_creates_nothing(admin: Site) -> None:
    fields = form_of(admin, "/admin/clients", "client-form")
    data = {**fields, "label": "Beidaihe desk", "role": "partner", "partner_base": "base-beidaihe",
            "service_point": ""}
    first = admin.post("/admin/clients", data=data)
    assert first.status_code == 200
    token = re.search(r'id="token" readonly value="([^"]+)"', first.text)
    assert token, first.text
    client_id = re.search(r"客户端 ([0-9a-f]{12}) 已创建", first.text)
    assert client_id
    again = admin.post("/admin/clients", data=data)
    assert 'id="token-gone"' in again.text and token.group(1) not in again.text
    with Session(admin.engine) as session:
        labels = [c.label for c in session.scalars(select(ApiClient))]
    assert labels.count("Beidaihe desk") == 1
    api = admin.run(admin.client.get("/v1/whoami", headers={"Authorization": f"Bearer {token.group(1)}"}))
    assert api.status_code == 200 and api.json()["partner_base_id"] == "base-beidaihe"
    created = audit_rows(admin, "client.create")
    assert [r.subject for r in created][-1] == client_id.group(1)
    assert created[-1].actor.startswith("web:")


def test_revoking_a_client_asks_first_then_the_token_stops_working(admin: Site) -> None:
    fields = form_of(admin, "/admin/clients", "client-form")
    made = admin.post("/admin/clients", data={**fields, "label": "to revoke", "role": "clerk"})
    client_id = re.search(r"客户端 ([0-9a-f]{12}) 已创建", made.text).group(1)  # type: ignore[union-attr]
    token = re.search(r'id="token" readonly value="([^"]+)"', made.text).group(1)  # type: ignore[union-attr]
    confirm = admin.get(f"/admin/clients/{client_id}/revoke")
    assert confirm.status_code == 200 and client_id in confirm.text and 'id="confirm-form"' in confirm.text
    fields = form_of(admin, f"/admin/clients/{client_id}/revoke", "confirm-form")
    done = admin.post(f"/admin/clients/{client_id}/revoke", data=fields)
    assert done.status_code == 303 and done.headers["location"] == "/admin/clients"
    again = admin.post(f"/admin/clients/{client_id}/revoke", data=fields)
    assert again.status_code == 303  # the first result, no second audit row
    assert [r.subject for r in audit_rows(admin, "client.revoke")].count(client_id) == 1
    api = admin.run(admin.client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"}))
    assert api.status_code == 401


def test_a_client_with_a_wrong_binding_is_refused_with_a_message(admin: Site) -> None:
    fields = form_of(admin, "/admin/clients", "client-form")
    answer = admin.post("/admin/clients", data={**fields, "label": "no base", "role": "partner"})
    assert answer.status_code == 422 and "输入有误" in answer.text


def test_staff_create_disable_and_unlock(admin: Site) -> None:
    fields = form_of(admin, "/admin/staff", "staff-form")
    made = admin.post("/admin/staff", data={**fields, "username": "clerk9", "display_name": "新制卡员",
                                            "role": "clerk", "password": STAFF_PASSWORD})
    assert made.status_code == 303
    assert 'data-username="clerk9"' in admin.get("/admin/staff").text
    other = replace(admin)  # same app and worker thread, its own cookie jar
    for _ in range(5):
        other.post("/login", data={"username": "clerk9", "password": "wrong password!",
                                   "csrf": csrf_in(other.get("/login").text)})
    page = admin.get("/admin/staff").text
    assert re.search(r'data-username="clerk9">.*?data-state="locked"', page, re.S)
    fields = form_of(admin, "/admin/staff/clerk9/unlock", "confirm-form")
    assert admin.post("/admin/staff/clerk9/unlock", data=fields).status_code == 303
    assert other.post("/login", data={"username": "clerk9", "password": STAFF_PASSWORD,
                                      "csrf": csrf_in(other.get("/login").text)}).status_code == 303
    fields = form_of(admin, "/admin/staff/clerk9/disable", "confirm-form")
    assert admin.post("/admin/staff/clerk9/disable", data=fields).status_code == 303
    assert other.get("/").status_code == 303  # the open session ended
    assert re.search(r'data-username="clerk9">.*?data-state="disabled"', admin.get("/admin/staff").text, re.S)
    kinds = [r.event_type for r in audit_rows(admin, "staff.create") + audit_rows(admin, "staff.unlock")
             + audit_rows(admin, "staff.disable") if r.subject == "clerk9"]
    assert kinds == ["staff.create", "staff.unlock", "staff.disable"]
    other.run(other.client.aclose())


def test_reference_data_is_saved_listed_and_audited(admin: Site) -> None:
    for form, path, data in (
        ("point-form", "/admin/points", {"code": "sp-new", "name": "新区服务站", "org_code": "X01"}),
        ("item-form", "/admin/items", {"code": "new_item", "name": "新服务", "sort": "3"}),
        ("base-form", "/admin/bases", {"code": "base-new", "name": "新基地", "city": "杭州"}),
    ):
        fields = form_of(admin, "/admin/places", form)
        assert admin.post(path, data={**fields, **data}).status_code == 303
    fields = form_of(admin, "/admin/places", "programme-form")
    answer = admin.post("/admin/programmes", data={
        **fields, "code": "p-2026-new", "base_code": "base-new", "name": "劳模疗休养",
        "starts_on": "2026-05-01",
        "ends_on": "2026-05-31", "quota": "20", "categories": ["model_worker"]})
    assert answer.status_code == 303, answer.text
    page = admin.get("/admin/places").text
    for code in ("sp-new", "new_item", "base-new", "p-2026-new"):
        assert f'data-code="{code}"' in page
    with Session(admin.engine) as session:
        programme = session.get(Programme, "p-2026-new")
    assert programme is not None and programme.quota == 20 and programme.categories == "model_worker"
    for kind in ("point.save", "item.save", "base.save", "programme.save"):
        assert audit_rows(admin, kind), kind


def test_a_programme_ending_before_it_starts_is_refused(admin: Site) -> None:
    fields = form_of(admin, "/admin/places", "programme-form")
    answer = admin.post("/admin/programmes", data={
        **fields, "code": "p-bad", "base_code": "base-beidaihe", "name": "x", "starts_on": "2026-05-31",
        "ends_on": "2026-05-01", "quota": "5"})
    assert answer.status_code == 422 and "结束日期：早于开始日期" in answer.text
    with Session(admin.engine) as session:
        assert session.get(Programme, "p-bad") is None


def test_an_unknown_category_is_refused(admin: Site) -> None:
    fields = form_of(admin, "/admin/places", "programme-form")
    answer = admin.post("/admin/programmes", data={
        **fields, "code": "p-cat", "base_code": "base-beidaihe", "name": "x", "starts_on": "2026-05-01",
        "ends_on": "2026-05-31", "quota": "5", "categories": ["no_such_group"]})
    assert answer.status_code == 422 and "no_such_group" in answer.text


def test_bindings_must_name_an_existing_place(admin: Site) -> None:
    fields = form_of(admin, "/admin/clients", "client-form")
    answer = admin.post("/admin/clients", data={**fields, "label": "ghost", "role": "service_point",
                                                "service_point": "sp-nowhere"})
    assert answer.status_code == 422 and "sp-nowhere" in answer.text
    fields = form_of(admin, "/admin/staff", "staff-form")
    answer = admin.post("/admin/staff", data={**fields, "username": "ghost1", "display_name": "x",
                                              "role": "partner", "password": STAFF_PASSWORD,
                                              "partner_base": "base-nowhere"})
    assert answer.status_code == 422 and "base-nowhere" in answer.text
    assert 'data-username="ghost1"' not in admin.get("/admin/staff").text
    fields = form_of(admin, "/admin/places", "programme-form")
    answer = admin.post("/admin/programmes", data={
        **fields, "code": "p-nobase", "base_code": "base-nowhere", "name": "x", "starts_on": "2026-05-01",
        "ends_on": "2026-05-31", "quota": "5"})
    assert answer.status_code == 422 and "base-nowhere" in answer.text


def test_a_named_list_with_an_unknown_member_saves_nothing(admin: Site) -> None:
    fields = form_of(admin, "/admin/places", "base-form")
    admin.post("/admin/bases", data={**fields, "code": "base-named", "name": "名单基地"})
    fields = form_of(admin, "/admin/places", "programme-form")
    answer = admin.post("/admin/programmes", data={
        **fields, "code": "p-named", "base_code": "base-named", "name": "x", "starts_on": "2026-05-01",
        "ends_on": "2026-05-31", "quota": "5", "named": "NOSUCHMEMBER1"})
    assert answer.status_code == 422 and "NOSUCHMEMBER1" in answer.text
    with Session(admin.engine) as session:
        assert session.get(Programme, "p-named") is None  # the programme row rolled back with it


def test_an_admin_cannot_disable_their_own_account(admin: Site) -> None:
    page = admin.get("/admin/staff").text
    assert "/admin/staff/admin1/disable" not in page  # no button for oneself
    fields = form_of(admin, "/admin/staff/admin1/disable", "confirm-form")
    answer = admin.post("/admin/staff/admin1/disable", data=fields)
    assert answer.status_code == 409
    assert admin.get("/admin").status_code == 200  # still signed in


def test_every_admin_page_renders_in_english(admin: Site) -> None:
    admin.client.cookies.set("cardsvc_lang", "en")
    try:
        for path, title in (("/admin", "Dashboard"), ("/admin/clients", "API clients and tokens"),
                            ("/admin/staff", "Staff users"), ("/admin/privacy", "Consent and erasure"),
                            ("/admin/places", "Service points, items, bases and programmes")):
            answer = admin.get(path)
            assert answer.status_code == 200, path
            assert f"<h1>{title}</h1>" in answer.text or f'">{title}</h1>' in answer.text, path
    finally:
        admin.client.cookies.delete("cardsvc_lang")


def test_an_admin_form_sent_after_the_session_ended_goes_to_the_login_page(admin: Site) -> None:
    fields = form_of(admin, "/admin/places", "point-form")
    gone = replace(admin)
    gone.client.cookies.set("cardsvc_session", "expired-or-forged")
    answer = gone.post("/admin/points", data={**fields, "code": "sp-late", "name": "x"},
                       headers={"referer": "http://testserver/admin/places"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?why=expired&next=/admin/places")
    assert 'data-code="sp-late"' not in admin.get("/admin/places").text
    gone.run(gone.client.aclose())


def test_the_dashboard_shows_the_audit_chain_verified_then_broken(admin: Site) -> None:
    for label in ("audit one", "audit two"):  # at least two audit rows, whatever ran before
        fields = form_of(admin, "/admin/clients", "client-form")
        made = admin.post("/admin/clients", data={**fields, "label": label, "role": "clerk"})
        assert made.status_code == 200
    page = admin.get("/admin")
    assert page.status_code == 200
    ok = re.search(r'id="audit-status" data-ok="true"\s+data-rows="(\d+)"', page.text)
    assert ok and int(ok.group(1)) > 0
    rows = int(ok.group(1))
    assert f"已校验至第 {rows - 1} 行" in page.text
    with admin.engine.begin() as connection:
        original = connection.execute(text("SELECT reason FROM audit_log WHERE seq = 1")).scalar_one()
        connection.execute(update(AuditLogRow).where(AuditLogRow.seq == 1).values(reason="tampered"))
    try:
        broken = admin.get("/admin").text
        assert 'data-ok="false"' in broken and 'data-broken-at="1"' in broken
        assert "第 0 行及之前的记录校验通过" in broken
    finally:
        with admin.engine.begin() as connection:
            connection.execute(update(AuditLogRow).where(AuditLogRow.seq == 1).values(reason=original))
    assert 'data-ok="true"' in admin.get("/admin").text


# --- in Chromium against cardsvc serve -------------------------------------------------------

Login = Callable[[Page, Role], None]


def registry_of(live: LiveServer) -> RegistryService:
    settings = get_settings(env="dev", data_dir=live.data_dir)
    return RegistryService(session_factory(engine_for(settings)), cipher_from_store(open_key_store(settings)))


def live_engine(live: LiveServer) -> Engine:
    return engine_for(get_settings(env="dev", data_dir=live.data_dir))


def live_members(live: LiveServer, count: int) -> list[str]:
    """Public ids of active members with no card (other suites' cards are left alone)."""
    engine = live_engine(live)
    with Session(engine) as session:
        carded = select(Card.member_id)
        query = (select(Member.public_id).where(Member.status == MemberStatus.active)
                 .where(Member.id.not_in(carded)).order_by(Member.id.desc()).limit(count))  # type: ignore[union-attr]
        found = list(session.scalars(query))
    engine.dispose()
    assert len(found) == count, "the live server has too few members without a card"
    return found


def seed_activity(live: LiveServer) -> dict[str, int]:
    """Issued cards in two months of one batch, service records, check-ins: what the charts count.

    The cards are stored revoked (not live) so the other suites' card issuing is not disturbed.
    """
    engine = live_engine(live)
    with Session(engine) as session:
        if session.scalars(select(Batch).where(Batch.label == "admin-dash-2026")).first() is not None:
            return {"cards": 3}  # seeded by an earlier test of this session
    members = live_members(live, 3)
    with Session(engine) as session, session.begin():
        rows = list(session.scalars(select(Member).where(Member.public_id.in_(members))))  # type: ignore[attr-defined]
        batch = Batch(label="admin-dash-2026", profile="ntag424_dna", key_version=1, prefix="990077",
                      year=2026, valid_days=365)
        session.add(batch)
        session.flush()
        for i, member in enumerate(rows):
            number = f"99007726{i:04d}"
            session.add(Card(card_number=number, batch_id=batch.id or 0, member_id=member.id or 0,
                             profile="ntag424_dna", key_version=1, state=JournalState.issued,
                             status=CardStatus.revoked, live=False,
                             issued_at=dt.datetime(2026, 3 + i % 2, 5, tzinfo=dt.UTC)))
            session.add(ServiceRecord(service_point_code="sp-chengguan", item_code="consultation",
                                      member_id=member.id or 0, card_number=number, client_id="admin-test",
                                      month="2026-03"))
            session.add(Checkin(programme_code=DEMO_PROGRAMME, member_id=member.id or 0, card_number=number,
                                client_id="admin-test", idempotency_key=f"admin-dash-{i}",
                                checked_in_at=dt.datetime.now(dt.UTC)))
    engine.dispose()
    return {"cards": len(members)}


def check_page(page: Page, name: str) -> None:
    """No serious/critical axe violation, and the screenshot for the docs."""
    assert serious_accessibility_violations(page) == []
    screenshot(page, name)


def check_phone(phone_page: Page, login: Login, path: str) -> None:
    """At 375 px: nothing wider than the screen except inside a scrolling table wrapper."""
    login(phone_page, Role.admin)
    phone_page.goto(path)
    overflow = phone_page.evaluate("""() => document.documentElement.scrollWidth""")
    assert overflow <= 375, f"{path} is {overflow} px wide at 375 px"
    assert serious_accessibility_violations(phone_page) == []


ADMIN_PATHS = ("/admin", "/admin/clients", "/admin/staff", "/admin/places", "/admin/privacy")


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_each_admin_page_fits_a_phone_and_passes_axe(phone_page: Page, login: Login, path: str,
                                                     live_server: LiveServer) -> None:
    seed_activity(live_server)  # the dashboard with charts drawn, not empty
    check_phone(phone_page, login, path)


def test_no_session_in_the_browser_goes_to_the_login_page(page: Page) -> None:
    for path in ADMIN_PATHS:
        page.goto(path)
        assert "/login?why=required" in page.url, path
        expect(page.locator("input[name=username]")).to_be_visible()


@pytest.mark.parametrize("role", [Role.clerk, Role.service_point, Role.partner])
def test_a_non_admin_browser_session_cannot_open_admin_pages(page: Page, login: Login, role: Role) -> None:
    login(page, role)
    assert page.locator("header nav a[href^='/admin']").count() == 0
    for path in ADMIN_PATHS:
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, path


def test_browser_client_flow(page: Page, login: Login, live_server: LiveServer) -> None:
    login(page, Role.admin)
    page.get_by_role("navigation").get_by_role("link", name="接口客户端").click()
    page.fill("#label", "黄山前台")
    page.select_option("#role", "partner")
    page.select_option("#partner_base", "base-huangshan")
    check_page(page, "admin-clients")
    page.click("#client-create")
    token = page.input_value("#token")
    assert token and page.locator(".flash.warn").is_visible()
    check_page(page, "admin-token")
    who = httpx.get(live_server.url("/v1/whoami"), headers={"Authorization": f"Bearer {token}"})
    assert who.status_code == 200 and who.json()["partner_base_id"] == "base-huangshan"
    page.go_back()
    page.reload()
    client_id = who.json()["client_id"]
    page.click(f"tr[data-client='{client_id}'] a.danger")
    expect(page.locator("#confirm-question")).to_contain_text(client_id)
    check_page(page, "admin-confirm")
    page.click("#confirm-submit")
    expect(page.locator(f"tr[data-client='{client_id}'] .status-revoked")).to_be_visible()
    expect(page.locator("#flash")).to_have_text("客户端已吊销。")
    gone = httpx.get(live_server.url("/v1/whoami"), headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


def test_browser_staff_flow(page: Page, login: Login, browser_page_factory: Callable[[], Page]) -> None:
    login(page, Role.admin)
    page.get_by_role("navigation").get_by_role("link", name="工作人员").click()
    page.fill("#username", "desk7")
    page.fill("#display_name", "前台七")
    page.select_option("#role", "service_point")
    page.fill("#password", STAFF_PASSWORD)
    page.select_option("#service_point", "sp-chengguan")
    page.click("#staff-create")
    expect(page.locator("#flash")).to_have_text("工作人员已创建。")
    row = page.locator("tr[data-username='desk7']")
    expect(row).to_contain_text("sp-chengguan")
    other = browser_page_factory()
    for _ in range(5):
        other.goto("/login")
        other.fill("input[name=username]", "desk7")
        other.fill("input[name=password]", "not the password")
        other.click("button[type=submit]")
    page.reload()
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "locked")
    check_page(page, "admin-staff")
    row.get_by_role("link", name="解锁 desk7").click()
    page.click("#confirm-submit")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "active")
    other.goto("/login")
    other.fill("input[name=username]", "desk7")
    other.fill("input[name=password]", STAFF_PASSWORD)
    other.click("button[type=submit]")
    other.wait_for_selector("[data-user='desk7']")
    row.get_by_role("link", name="停用 desk7").click()
    page.click("#confirm-submit")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "disabled")
    other.reload()
    assert "/login" in other.url


def test_browser_places_flow(page: Page, login: Login) -> None:
    login(page, Role.admin)
    page.get_by_role("navigation").get_by_role("link", name="站点与项目").click()
    page.fill("#point-code", "sp-east")
    page.fill("#point-name", "东城街道职工服务站")
    page.click("#point-save")
    expect(page.locator("tr[data-code='sp-east']")).to_be_visible()
    page.fill("#item-code", "tea_break")
    page.fill("#item-name", "爱心驿站")
    page.click("#item-save")
    expect(page.locator("tr[data-code='tea_break']")).to_be_visible()
    page.fill("#base-code", "base-qiandao")
    page.fill("#base-name", "千岛湖职工疗休养基地")
    page.fill("#base-city", "杭州")
    page.click("#base-save")
    expect(page.locator("tr[data-code='base-qiandao']")).to_be_visible()
    page.fill("#programme-code", "qdh-2026-06")
    page.select_option("#base_code", "base-qiandao")
    page.fill("#programme-name", "千岛湖 2026 年 6 月")
    page.fill("#starts_on", "2026-06-01")
    page.fill("#ends_on", "2026-06-30")
    page.fill("#quota", "40")
    page.locator("fieldset input[type=checkbox]").first.check()
    page.click("#programme-save")
    row = page.locator("tr[data-code='qdh-2026-06']")
    expect(row).to_contain_text("0 / 40")
    page.locator("#programmes").scroll_into_view_if_needed()
    check_page(page, "admin-places")


def test_browser_named_list_programme(page: Page, login: Login, live_server: LiveServer) -> None:
    members = live_members(live_server, 2)
    login(page, Role.admin)
    page.goto("/admin/places")
    page.fill("#programme-code", "named-2026")
    page.select_option("#base_code", "base-beidaihe")
    page.fill("#programme-name", "劳模专列")
    page.fill("#starts_on", "2026-07-01")
    page.fill("#ends_on", "2026-07-10")
    page.fill("#quota", "2")
    page.fill("#named", "\n".join(members))
    page.click("#programme-save")
    expect(page.locator("tr[data-code='named-2026']")).to_contain_text("指定名单")
    engine = live_engine(live_server)
    with Session(engine) as session:
        query = select(ProgrammeMember).where(ProgrammeMember.programme_code == "named-2026")
        assert len(list(session.scalars(query))) == 2
    engine.dispose()


def test_browser_privacy_flow(page: Page, login: Login, live_server: LiveServer) -> None:
    consenting, erased = live_members(live_server, 2)
    registry_of(live_server).record_consent(consenting, partner="base-beidaihe", purpose="recuperation")
    login(page, Role.admin)
    page.get_by_role("navigation").get_by_role("link", name="授权与删除").click()
    row = page.locator(f"tr[data-member='{consenting}']").first
    row.get_by_role("button", name=re.compile("撤回授权")).click()
    expect(page.locator("#confirm-question")).to_contain_text(consenting)
    page.click("#confirm-submit")
    expect(page.locator("#flash")).to_have_text("授权已撤回。")
    expect(page.locator(f"tr[data-member='{consenting}']").first).to_contain_text("撤回")
    page.fill("#member", erased)
    page.click("#erase-ask")
    expect(page.locator("#confirm-question")).to_contain_text(erased)
    page.click("#confirm-submit")
    expect(page.locator(f"#erasures tr[data-member='{erased}']")).to_be_visible()
    check_page(page, "admin-privacy")
    engine = live_engine(live_server)
    with Session(engine) as session:
        member = session.scalars(select(Member).where(Member.public_id == erased)).one()
        assert member.status == MemberStatus.erased and member.name == "" and member.id_sealed is None
    engine.dispose()


def test_browser_an_unknown_member_cannot_be_erased(page: Page, login: Login) -> None:
    login(page, Role.admin)
    page.goto("/admin/privacy")
    page.fill("#member", "NOSUCHMEMBER")
    page.click("#erase-ask")
    page.click("#confirm-submit")
    expect(page.locator("main")).to_contain_text("找不到此页面或记录")


def test_browser_dashboard(page: Page, login: Login, live_server: LiveServer) -> None:
    seed_activity(live_server)
    login(page, Role.admin)
    page.goto("/admin/places")  # one audited change at least, whichever tests ran before
    page.fill("#item-code", "dash_item")
    page.fill("#item-name", "统计用项目")
    page.click("#item-save")
    expect(page.locator("tr[data-code='dash_item']")).to_be_visible()
    page.get_by_role("navigation").get_by_role("link", name="统计概览").click()
    expect(page.locator("#audit-status")).to_have_attribute("data-ok", "true")
    expect(page.locator("#audit-ok")).to_contain_text("已校验至第")
    for chart in ("chart-cards-batch", "chart-cards-month", "chart-services-point", "chart-services-item",
                  "chart-checkins-base"):
        figure = page.locator(f"#{chart}")
        bars = int(figure.get_attribute("data-bars") or "0")
        assert figure.locator("svg.bar-chart g").count() == bars, chart
    batch = page.locator("#chart-cards-batch tr[data-bar='admin-dash-2026'] td")
    expect(batch).to_have_text("3")
    expect(page.locator("#chart-cards-month tr[data-bar='2026-03'] td")).to_have_text("2")
    expect(page.locator("#chart-cards-month tr[data-bar='2026-04'] td")).to_have_text("1")
    assert int(page.locator("#chart-services-point tr[data-bar='sp-chengguan'] td").inner_text()) >= 3
    assert int(page.locator("#chart-services-item tr[data-bar='consultation'] td").inner_text()) >= 3
    assert int(page.locator("#chart-checkins-base tr[data-bar='base-beidaihe'] td").inner_text()) >= 3
    svg_bar = page.locator("#chart-cards-batch svg g[data-label='admin-dash-2026']")
    expect(svg_bar).to_have_attribute("data-value", "3")
    widths = page.evaluate("""() => Array.from(cardsvcCharts.bar([{label: "a", value: 4},
        {label: "b", value: 2}, {label: "c", value: 0}]).querySelectorAll("rect"))
        .map((r) => Number(r.getAttribute("width")))""")
    assert widths[0] == 2 * widths[1] and widths[2] == 0
    check_page(page, "admin-dashboard")


@pytest.fixture
def browser_page_factory(browser: object, live_server: LiveServer) -> Iterator[Callable[[], Page]]:
    made: list[Page] = []

    def new() -> Page:
        context = browser.new_context(base_url=live_server.base_url, locale="zh-CN")  # type: ignore[attr-defined]
        made.append(context.new_page())
        return made[-1]

    yield new
    for one in made:
        one.context.close()

