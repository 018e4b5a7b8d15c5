"""Desk pages in process: bad uploads, double submissions, the report download, session expiry on a
desk form, and what a partner session gets (a 403 page, nothing done)."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from cardsvc.demo_data import MEMBERS, ORGS
from cardsvc.verification.roles import Role
from cardsvc.web.session import SESSION_COOKIE
from tests.web.support import Site

_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


def _form(site: Site, path: str) -> dict[str, str]:
    html = site.get(path).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    nonce = _NONCE.search(html)
    assert csrf and nonce, f"no guarded form on {path}"
    return {"csrf": csrf.group(1), "nonce": nonce.group(1)}


def _upload(site: Site, name: str, content: bytes, **extra: str) -> httpx.Response:
    return site.post("/desk/import", data={**_form(site, "/desk/import"), **extra},
                     files={"file": (name, content, "application/octet-stream")})


@pytest.fixture
def clerk(site: Site) -> Site:
    site.client = site.fresh_client()
    assert site.login(Role.clerk).status_code == 303
    return site


def test_a_file_that_is_not_a_member_list_gets_a_clear_message(clerk: Site) -> None:
    wrong_type = _upload(clerk, "photo.jpg", b"\xff\xd8\xff\xe0 not a list")
    assert wrong_type.status_code == 422 and "这不是会员名单" in wrong_type.text
    wrong_columns = _upload(clerk, "orgs.csv", ORGS.read_bytes())
    assert wrong_columns.status_code == 422 and "无法读取为会员名单" in wrong_columns.text
    assert "Traceback" not in wrong_columns.text


def test_import_report_counts_rows_and_downloads_as_xlsx(clerk: Site) -> None:
    done = _upload(clerk, "members.csv", MEMBERS.read_bytes(), check_only="true")
    assert done.status_code == 303
    report = clerk.get(done.headers["location"])
    assert 'data-total="rows_read">40<' in report.text and "仅校验" in report.text
    xlsx = clerk.get(done.headers["location"] + "?download=xlsx")
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    totals = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row}
    assert totals["rows_read"] == 40 and totals["dry_run"] == "yes"
    assert clerk.get("/desk/import/reports/not-a-real-report-id").status_code == 404


def test_a_form_submitted_twice_imports_once(clerk: Site) -> None:
    fields = _form(clerk, "/desk/import")
    files = {"file": ("members.csv", MEMBERS.read_bytes(), "text/csv")}
    first = clerk.post("/desk/import", data=fields, files=files)
    second = clerk.post("/desk/import", data=fields, files=files)
    assert first.headers["location"] == second.headers["location"]  # the same report, one import
    shown = clerk.get(second.headers["location"])
    assert 'data-flash="error.duplicate"' in shown.text and 'data-total="created">40<' in shown.text
    again = _upload(clerk, "members.csv", MEMBERS.read_bytes())  # a new form: imports, changes nothing
    assert 'data-total="unchanged">40<' in clerk.get(again.headers["location"]).text


def test_expired_session_on_a_desk_form_goes_to_login_and_back(site: Site) -> None:
    site.client = site.fresh_client()
    site.login(Role.clerk)
    fields = _form(site, "/desk/batches")
    site.client.cookies.set(SESSION_COOKIE, "expired-session")
    response = site.post("/desk/batches", data={**fields, "label": "X", "profile": "ntag424-dna"},
                         headers={"Referer": "http://testserver/desk/batches"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?why=expired&next=/desk/batches"


def test_a_partner_session_cannot_use_the_desk(site: Site) -> None:
    site.client = site.fresh_client()
    site.login(Role.partner)
    csrf = site.csrf("/")
    page = site.get("/desk/batches")
    assert page.status_code == 403 and "无权" in page.text
    refused = site.post("/desk/batches", data={"csrf": csrf, "nonce": "n" * 20, "label": "P",
                                               "profile": "ntag424-dna"})
    assert refused.status_code == 403
    with site.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM card_batch WHERE label = 'P'")).scalar_one() == 0


def test_an_upload_over_the_limit_is_refused_with_a_page(clerk: Site) -> None:
    from cardsvc.web.limits import MAX_PAGE_BODY

    fields = _form(clerk, "/desk/import")
    declared = clerk.post("/desk/import", data=fields,
                          files={"file": ("big.csv", b"x" * (MAX_PAGE_BODY + 1), "text/csv")})
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused as the stream grows
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        for _ in range(MAX_PAGE_BODY // 65536 + 2):
            yield b"y" * 65536

    streamed = clerk.run(clerk.client.post("/desk/import", content=chunks(), headers={
        "Content-Type": "multipart/form-data; boundary=xyz", "X-CSRF-Token": fields["csrf"]}))
    assert streamed.status_code == 413 and "The upload is too large" in streamed.text
