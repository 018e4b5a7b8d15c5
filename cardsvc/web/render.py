"""Render a page: the template, the signed-in user, the navigation, the catalog, the flash message.

Every page response carries the same security headers (CSP: only this origin's scripts and styles,
no framing) and ``Cache-Control: no-store`` (pages show member data).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from cardsvc.web.access import nav_for
from cardsvc.web.context import web_of
from cardsvc.web.i18n import LANG_COOKIE, Lang, parse_lang, translate
from cardsvc.web.session import FLASH_COOKIE, maybe_user, pending_flash

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                                "form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}


def new_nonce() -> str:
    """A one-time id for a form (double submissions are recognised by it)."""
    return secrets.token_urlsafe(18)


def lang_of(request: Request) -> Lang:
    return parse_lang(request.cookies.get(LANG_COOKIE))


def vendor_missing(names: tuple[str, ...]) -> list[str]:
    """The vendor files (built by tools/build_web_assets.sh) that are not installed."""
    return [name for name in names if not (VENDOR_DIR / name).is_file()]


def render(request: Request, template: str, *, status: int = 200, vendor: tuple[str, ...] = (),
           **context: Any) -> HTMLResponse:
    """``template`` rendered for this request; ``vendor`` names the vendor scripts it needs."""
    lang = lang_of(request)
    user = maybe_user(request)
    flash_key = pending_flash(request)

    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    def url(name: str, **params: object) -> str:
        return str(request.url_for(name, **params).path)

    page = web_of(request).templates.get_template(template)
    body = page.render(t=t, url=url, form_nonce=new_nonce, lang=lang.value, user=user,
                       nav=nav_for(user.role) if user else [], flash=flash_key,
                       path=request.url.path, page=_route(request),
                       missing_vendor=vendor_missing(vendor), vendor=vendor, **context)
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if flash_key:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _route(request: Request) -> str:
    return str(getattr(request.scope.get("route"), "name", "") or "")


def secured(response: Response) -> Response:
    """Add the page security headers to a non-template response (redirects, downloads)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
