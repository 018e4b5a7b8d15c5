"""The modules as the real app serves them (``/static/js/offline/``, under the pages' CSP): they
load in a page of ``cardsvc serve`` and verify a credential there."""

from __future__ import annotations

from playwright.sync_api import Page

from cardsvc.credential import issue_credential, to_qr_text
from tests.support.browser import LiveServer

from .material import NOW, Keys, claims

_VERIFY = """async ({ bundle, anchor, qr, nowMs }) => {
  const v = await import("/static/js/offline/verify.js");
  const { fromHex } = await import("/static/js/offline/bundle.js");
  const verifier = await v.createVerifier({ bundleBytes: fromHex(bundle), clock: () => nowMs,
                                            anchors: v.anchorFromCoseKey(fromHex(anchor)) });
  const result = await verifier.verify(qr);
  return [result.status, result.reason, result.cardNumber];
}"""


def test_the_app_serves_the_modules_and_they_verify_under_its_csp(page: Page,
                                                                  live_server: LiveServer) -> None:
    module = page.request.get(live_server.url("/static/js/offline/verify.js"))
    assert module.ok and module.headers["content-type"].startswith("text/javascript")
    login = page.goto("/login")
    assert login is not None and "default-src 'self'" in login.headers["content-security-policy"]
    keys = Keys.generate()
    args = {"bundle": keys.bundle().hex(), "anchor": keys.anchors()[0].to_cose_key().hex(),
            "qr": to_qr_text(issue_credential(keys.ed, claims())), "nowMs": int(NOW.timestamp() * 1000)}
    assert page.evaluate(_VERIFY, args) == ["ok", None, "202600012345"]
