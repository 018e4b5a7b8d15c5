"""Sign in, sign out, the language switch and the home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cardsvc.errors import RateLimited
from cardsvc.registry.staff import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, LoginRefused
from cardsvc.verification.ratelimit import source_key
from cardsvc.web.access import nav_for
from cardsvc.web.context import web_of
from cardsvc.web.i18n import LANG_COOKIE, parse_lang
from cardsvc.web.render import render, secured
from cardsvc.web.session import (
    PRE_COOKIE,
    SESSION_COOKIE,
    csrf_for,
    maybe_user,
    new_pre_token,
    safe_next,
    set_cookie,
    user_of,
)

router = APIRouter()
_WHY = {"expired": "login.expired", "required": "login.required", "signed_out": "login.signed_out"}
# A locked account answers like a wrong password: a different message would tell a stranger that
# the username exists (the text mentions the lock-out, so a real user still learns why).
_REFUSED = {"bad_credentials": "login.bad_credentials", "locked": "login.bad_credentials",
            "disabled": "login.disabled"}


def _login_page(request: Request, *, next_path: str, message: str | None, status: int = 200,
                username: str = "") -> Response:
    pre = new_pre_token(request)
    response = render(request, "login.html", status=status, next_path=next_path, message=message,
                      login_csrf=csrf_for(pre), username=username)
    set_cookie(request, response, PRE_COOKIE, pre, max_age=int(IDLE_TIMEOUT.total_seconds()))
    return response


def _throttled(request: Request, *, next_path: str, retry_after: int) -> Response:
    """429 in the page's language; the password was not even checked (no hint about the account)."""
    response = _login_page(request, next_path=next_path, message="login.throttled", status=429)
    response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/login", name="login_form")
async def login_form(request: Request, next: str = "/", why: str = "") -> Response:
    if maybe_user(request) is not None and why not in _WHY:
        return secured(RedirectResponse(safe_next(next), status_code=303))
    return _login_page(request, next_path=safe_next(next), message=_WHY.get(why))


@router.post("/login", name="login_submit")
async def login_submit(request: Request, username: Annotated[str, Form(max_length=64)],
                       password: Annotated[str, Form(max_length=256)],
                       next: Annotated[str, Form()] = "/") -> Response:
    web = web_of(request)
    try:
        await web.login_limiter.acquire(source_key(request.client.host if request.client else None))
    except RateLimited as limited:
        return _throttled(request, next_path=safe_next(next), retry_after=limited.retry_after)
    try:
        staff = await run_in_threadpool(web.accounts.authenticate, username.strip().lower(), password)
    except LoginRefused as refused:
        return _login_page(request, next_path=safe_next(next), status=401, username=username,
                           message=_REFUSED.get(refused.reason, "login.bad_credentials"))
    token = await run_in_threadpool(web.accounts.start_session, staff)
    response = secured(RedirectResponse(safe_next(next), status_code=303))
    set_cookie(request, response, SESSION_COOKIE, token, max_age=int(ABSOLUTE_TIMEOUT.total_seconds()))
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@router.post("/logout", name="logout")
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(web_of(request).accounts.end_session, token)
    response = secured(RedirectResponse("/login?why=signed_out", status_code=303))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang", name="language")
async def language(request: Request, to: str = "", next: str = "/") -> Response:
    response = secured(RedirectResponse(safe_next(next), status_code=303))
    set_cookie(request, response, LANG_COOKIE, parse_lang(to).value, max_age=365 * 24 * 3600)
    return response


@router.get("/", name="home")
async def home(request: Request) -> Response:
    """Links to the pages of the user's role (the header shows the same navigation)."""
    return render(request, "home.html", entries=nav_for(user_of(request).role))
