"""What the pages are built from, kept on the pages app's ``state``: no module globals."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from fastapi import Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cardsvc.config import Environment as RunEnvironment
from cardsvc.config import Settings
from cardsvc.credential.keystore import KeyStore, open_key_store
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.staff import StaffAccounts
from cardsvc.verification.ratelimit import RateLimiter
from cardsvc.web.limits import build_login_limiter


def template_environment() -> Environment:
    """Jinja2 over ``cardsvc/web/templates`` with autoescaping on for every template."""
    return Environment(loader=PackageLoader("cardsvc.web", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass
class WebContext:
    settings: Settings
    sessions: SessionFactory
    accounts: StaffAccounts
    templates: Environment = field(default_factory=template_environment)

    @property
    def secure_cookies(self) -> bool:
        return self.settings.env is RunEnvironment.production

    @cached_property
    def key_store(self) -> KeyStore:
        return open_key_store(self.settings)

    @cached_property
    def login_limiter(self) -> RateLimiter:
        """Sign-in attempts per source address (:mod:`cardsvc.web.limits`)."""
        return build_login_limiter(self.settings)

    async def aclose(self) -> None:
        """Close what the pages opened: the login limiter (its Redis client), if it was ever built."""
        limiter = self.__dict__.pop("login_limiter", None)
        if limiter is not None:
            await limiter.aclose()


def web_of(request: Request) -> WebContext:
    context = request.app.state.web
    if not isinstance(context, WebContext):
        raise TypeError("app.state.web is not a WebContext")
    return context
