"""The issuance desk end to end in Chromium against the live server, with a real station:

import a member list → validation report (XLSX) → create a batch → `cardsvc batch issue` writes the
cards on two emulated readers (pyscard → private pcscd → vpcd → emulator) while the batch page
shows the progress per reader → print sheet PDF → look a card up → suspend it with confirmation
(a second submission of the same form changes nothing). Every desk page passes axe-core (no
serious or critical violations) and is saved to docs/img/ for docs/web.md.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page

from cardsvc.demo_data import NEW_MEMBERS
from cardsvc.verification.roles import Role
from cardsvc.web.i18n import Lang, translate
from tests.issuance.support import blank_cards
from tests.support.browser import LiveServer, screenshot, serious_accessibility_violations
from tests.support.pcsc_stack import PcscStack

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]
BATCH = "WEB-G4"
G4_MEMBERS = 8


def _accessible(page: Page, name: str) -> None:
    assert serious_accessibility_violations(page) == [], name
    screenshot(page, name)


def _import(page: Page) -> None:
    page.goto("/desk/import")
    _accessible(page, "desk-import")
    page.set_input_files("#file", str(NEW_MEMBERS))
    page.click("#import-form button[type=submit]")
    assert page.locator("[data-total=created]").inner_text() == str(G4_MEMBERS)
    assert page.locator("[data-total=rejected_rows]").inner_text() == "0"
    with page.expect_download() as download:
        page.click("#report-xlsx")
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes())).active
    assert sheet is not None and sheet["A1"].value == "行号 row"
    _accessible(page, "desk-report")


def _create_batch(page: Page) -> None:
    page.goto("/desk/batches")
    page.fill("#label", BATCH)
    page.select_option("#batch-org", "G4")
    page.click("#batch-form button[type=submit]")
    assert BATCH in page.locator("#batch-created").inner_text()
    row = page.locator(f"tr[data-batch='{BATCH}'] td")
    assert row.nth(2).inner_text() == str(G4_MEMBERS) and row.nth(3).inner_text() == str(G4_MEMBERS)


def _issue_on_two_readers(page: Page, live_server: LiveServer, stack: PcscStack) -> None:
    stack.emulate([blank_cards("ntag424", 4), blank_cards("ntag424", 4, first_uid=0x100)], feed=True)
    readers = [arg for name in stack.reader_names for arg in ("--readers", name)]
    station = subprocess.Popen(
        [sys.executable, "-c", "from cardsvc.cli.main import run; run()", "batch", "issue", BATCH,
         *readers, "--json"], env=live_server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    progress = page.locator(f"[data-progress='{BATCH}']")
    page.wait_for_function(
        """([sel, want]) => [...document.querySelectorAll(sel + " td[data-col=issued]")]
                              .reduce((n, td) => n + Number(td.textContent || 0), 0) === want""",
        arg=[f"[data-progress='{BATCH}']", G4_MEMBERS], timeout=120_000)
    out, err = station.communicate(timeout=120)
    assert station.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out.decode().splitlines()[-1])["summary"]
    assert summary["issued"] == G4_MEMBERS
    page.wait_for_timeout(2500)  # one more poll after the station finished
    keys = progress.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert sorted(keys) == sorted(stack.reader_names), keys  # one row per reader, both did work


def _print_sheet(page: Page) -> None:
    page.reload()
    _accessible(page, "desk-batches")
    with page.expect_download() as download:
        page.click(f"[data-print='{BATCH}']")
    assert download.value.path().read_bytes().startswith(b"%PDF")


def _lookup_and_suspend(page: Page) -> None:
    page.goto("/desk/cards")
    page.fill("#q", "谢娜")
    page.click("form[role=search] button")
    results = page.locator("#card-results tbody tr")
    assert results.count() == 1 and "谢娜" not in results.inner_text()  # masked
    _accessible(page, "desk-cards")
    results.locator("a").click()
    assert page.locator("[data-status]").get_attribute("data-status") == "active"
    _accessible(page, "desk-card")
    events = page.locator("#card-history tbody tr").count()
    card_url = page.url
    page.click("[data-action=suspend]")
    _accessible(page, "desk-confirm")
    page.fill("#reason", "会员申请")
    # The same form sent twice (a double click that got through, a retried request): same nonce.
    pages = page.evaluate("""async () => {
        const form = document.getElementById("confirm-form");
        const body = new URLSearchParams(new FormData(form));
        const first = await fetch(form.action, {method: "POST", body});
        const second = await fetch(form.action, {method: "POST", body});
        return [first.status, await first.text(), second.status, await second.text()];
    }""")
    assert pages[0] == pages[2] == 200
    assert 'data-status="suspended"' in pages[1] and 'data-flash="error.duplicate"' in pages[3]
    page.goto(card_url)
    assert page.locator("[data-status]").get_attribute("data-status") == "suspended"
    assert page.locator("#card-history tbody tr").count() == events + 1  # suspended once
    page.goto(card_url + "/suspend")  # a fresh form for a card already suspended
    page.click("#confirm-submit")
    # a clear message in the page's language (no English exception text), and nothing changed
    assert page.locator("#error-message").inner_text().strip() == translate(Lang.zh, "problem.issuance")


def test_issuance_desk_flow(page: Page, login: Callable[[Page, Role], None], live_server: LiveServer,
                            pcsc_stack: Callable[[int], PcscStack]) -> None:
    login(page, Role.clerk)
    _import(page)
    _create_batch(page)
    _issue_on_two_readers(page, live_server, pcsc_stack(2))
    _print_sheet(page)
    _lookup_and_suspend(page)
