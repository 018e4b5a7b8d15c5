"""One-time form submission shared by the page modules.

Every POST form carries a nonce; :func:`submit_once` runs the form's work once per nonce
(``StaffAccounts.once``) and redirects to the page the work named. A second submission of the same
form lands on the same page, changes nothing, and says so with ``duplicate_key``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from cardsvc.web.context import web_of
from cardsvc.web.render import secured
from cardsvc.web.session import flash, user_of


def submit_once(request: Request, nonce: str, work: Callable[[], str], *, done_key: str | None = None,
                duplicate_key: str = "error.duplicate") -> Response:
    """Run ``work`` (which returns the URL to show next) once per form nonce; redirect there."""
    target, first = web_of(request).accounts.once(user_of(request).staff, nonce, work)
    response = secured(RedirectResponse(target, status_code=303))
    key = done_key if first else duplicate_key
    if key is not None:
        flash(request, response, key)
    return response
