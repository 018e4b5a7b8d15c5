"""Staff sessions on the pages: the session cookie, the page guard, CSRF tokens, flash messages.

* ``cardsvc_session``: a random id (HttpOnly, SameSite=Strict, Secure outside dev/test); the server
  keeps only its hash (:class:`cardsvc.registry.staff.StaffAccounts`).
* :func:`guard` runs before every page (an app-wide dependency): it looks the route name up in
  :data:`cardsvc.web.access.PAGES` (unknown → refused), resumes the session, checks the role, and
  on every POST checks the CSRF token (form field ``csrf`` or header ``X-CSRF-Token``). The token
  is an HMAC of the session id, so it needs no storage and dies with the session. The public login
  form uses a double-submit cookie (``cardsvc_pre``) the same way.
* No or expired session → :class:`LoginRequired`, which the error handlers turn into a redirect to
  the login page that remembers where the user was.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardsvc.errors import AuthenticationRequired, PermissionDenied
from cardsvc.registry.staff import LoginRefused, Staff
from cardsvc.verification.roles import Role
from cardsvc.web.access import check_page, policy_for
from cardsvc.web.context import web_of
from cardsvc.web.i18n import MESSAGES

SESSION_COOKIE = "cardsvc_session"
PRE_COOKIE = "cardsvc_pre"
FLASH_COOKIE = "cardsvc_flash"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_CSRF_LABEL = b"cardsvc-page-csrf"


class LoginRequired(AuthenticationRequired):
    """A page needs a signed-in staff user; ``reason`` is ``required`` or ``expired``."""

    code = "login_required"

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class CsrfRefused(PermissionDenied):
    """A POST without the right CSRF token (stale form, or a cross-site request)."""

    code = "csrf"


@dataclass(frozen=True, slots=True)
class PageUser:
    """The signed-in user of this request and the token their forms must carry."""

    staff: Staff
    role: Role
    csrf: str


def csrf_for(secret: str) -> str:
    return hmac.new(secret.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def route_name(request: Request) -> str:
    return str(getattr(request.scope.get("route"), "name", "") or "")


async def guard(request: Request) -> None:
    """Admit the request to its page or raise (LoginRequired, PermissionDenied, CsrfRefused)."""
    name = route_name(request)
    policy = policy_for(name)
    user = await _resume(request)
    request.state.user = user
    if policy.public:
        if request.method == "POST":
            await _check_csrf(request, csrf_for(request.cookies.get(PRE_COOKIE, "")))
        return
    if user is None:
        reason = "expired" if request.cookies.get(SESSION_COOKIE) else "required"
        raise LoginRequired("sign in to open this page", reason=reason)
    check_page(name, user.role)
    if request.method not in ("GET", "HEAD"):
        await _check_csrf(request, user.csrf)


async def _resume(request: Request) -> PageUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        staff = await run_in_threadpool(web_of(request).accounts.resume, token)
    except LoginRefused:
        return None
    return PageUser(staff=staff, role=Role(staff.role), csrf=csrf_for(token))


async def _check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and _is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, expected) or expected == csrf_for(""):
        raise CsrfRefused("missing or wrong CSRF token")


def _is_form(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in ("application/x-www-form-urlencoded", "multipart/form-data")


def user_of(request: Request) -> PageUser:
    """The signed-in user (the guard admitted one for every non-public page)."""
    user = getattr(request.state, "user", None)
    if not isinstance(user, PageUser):
        raise LoginRequired("sign in to open this page", reason="required")
    return user


def maybe_user(request: Request) -> PageUser | None:
    user = getattr(request.state, "user", None)
    return user if isinstance(user, PageUser) else None


def new_pre_token(request: Request) -> str:
    """The login form's double-submit cookie value (kept when the browser already has one)."""
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def set_cookie(request: Request, response: Response, name: str, value: str, *,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=web_of(request).secure_cookies)


def flash(request: Request, response: Response, key: str) -> None:
    """Show catalog message ``key`` on the next page rendered (keys only: never user text)."""
    set_cookie(request, response, FLASH_COOKIE, key, max_age=120)


def pending_flash(request: Request) -> str | None:
    key = request.cookies.get(FLASH_COOKIE)
    return key if key in MESSAGES else None


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to (never another site: ``//host`` and ``/\\host`` are refused)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target
