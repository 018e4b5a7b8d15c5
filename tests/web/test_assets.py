"""The vendor files from npm are installed, and a page says so in the page when one is missing."""

from __future__ import annotations

from cardsvc.web.context import template_environment
from cardsvc.web.i18n import Lang, translate
from cardsvc.web.render import VENDOR_DIR, vendor_missing

VENDOR = ("jsQR.js", "axe.min.js")


def test_vendor_files_are_built() -> None:
    missing = vendor_missing(VENDOR)
    assert missing == [], f"missing {missing} in {VENDOR_DIR}: run tools/build_web_assets.sh"
    assert (VENDOR_DIR / "jsQR.js").read_text()[:2000].find("jsQR") >= 0


def test_a_page_names_a_missing_vendor_file() -> None:
    missing = vendor_missing(("no-such-lib.js",))
    assert missing == ["no-such-lib.js"]

    def t(key: str, **values: object) -> str:
        return translate(Lang.zh, key, **values)

    html = template_environment().get_template("error.html").render(
        t=t, url=lambda _name: "/", form_nonce=lambda: "n", lang="zh-CN", user=None, nav=[], flash=None,
        path="/", page="x", missing_vendor=missing, vendor=("no-such-lib.js",),
        message_key="error.not_found", values={})
    assert 'data-vendor-missing="no-such-lib.js"' in html and "tools/build_web_assets.sh" in html
    assert 'src="/static/vendor/no-such-lib.js"' not in html
