"""Staff accounts for the web pages: argon2id passwords, lock-out, server-side sessions, form nonces.

* A password is stored only as its argon2id hash (argon2-cffi's RFC 9106 low-memory profile).
* Five failed logins in a row lock the account for 15 minutes; while locked even the right password
  is refused. An unknown username costs the same hash verification as a known one.
* A session id is 256 random bits handed to the browser once; the table keeps only its SHA-256.
  Sessions end after 30 idle minutes or 12 hours, whichever comes first, and on logout, on a
  password change and when the user is disabled.
* A form nonce is recorded once per submitted form: a second submission of the same form is told
  where the first one led instead of doing the work again (:meth:`StaffAccounts.once`).

The role is a :class:`cardsvc.verification.roles.Role` value checked by the caller (this layer is
below verification); a ``service_point`` user must be bound to a service point and a ``partner``
user to a partner base.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from cardsvc.errors import AuthenticationRequired, Conflict, InvalidRecord, NotFound
from cardsvc.logging import get_logger
from cardsvc.registry import staff_repo as repo
from cardsvc.registry.db import SessionFactory
from cardsvc.registry.models import utcnow
from cardsvc.registry.privacy_requests import joined
from cardsvc.registry.staff_models import FormNonce, StaffSession, StaffUser

log = get_logger(__name__)

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)
TOUCH_EVERY = dt.timedelta(seconds=60)  # last_seen_at is written at most this often
MIN_PASSWORD = 10
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
_REFUSALS = {"bad_credentials": "wrong username or password", "disabled": "account disabled",
             "locked": "account locked after repeated failures"}
_BINDINGS = {"service_point": "service_point_id", "partner": "partner_base_id"}


class LoginRefused(AuthenticationRequired):
    """A login or a session was refused; ``reason`` is bad_credentials, locked, disabled or expired."""

    code = "login_refused"

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Staff:
    """A signed-in staff user as pages see it (no hash, no counters)."""

    id: int
    username: str
    display_name: str
    role: str
    service_point_id: str | None
    partner_base_id: str | None

    @classmethod
    def of(cls, row: StaffUser) -> Staff:
        return cls(_id(row), row.username, row.display_name, row.role, row.service_point_id,
                   row.partner_base_id)


@dataclass(frozen=True, slots=True)
class StaffListing:
    username: str
    display_name: str
    role: str
    bound_to: str
    disabled: bool
    locked: bool


@dataclass(frozen=True, slots=True)
class NewStaff:
    username: str
    display_name: str
    role: str
    password: str
    service_point_id: str | None = None
    partner_base_id: str | None = None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRecord(f"a password needs at least {MIN_PASSWORD} characters", field="password",
                            reason="too_short")


def _check_new(new: NewStaff) -> None:
    if not _USERNAME.match(new.username):
        raise InvalidRecord("a username is 2-64 of a-z 0-9 _ . - (lower case)", field="username",
                            reason="username_format")
    if not new.display_name.strip() or len(new.display_name) > 80:
        raise InvalidRecord("a display name is 1-80 characters", field="display_name", reason="length_1_80")
    check_password_rules(new.password)
    bound = {"service_point_id": new.service_point_id, "partner_base_id": new.partner_base_id}
    wanted = _BINDINGS.get(new.role)
    for name, value in bound.items():
        if (name == wanted) != bool(value):
            reason = "binding_needed" if name == wanted else "binding_not_taken"
            raise InvalidRecord(f"role {new.role} {'needs' if name == wanted else 'takes no'} {name}",
                                field=name, reason=reason)


class StaffAccounts:
    """Staff users and their sessions. Owns its transactions (one per call)."""

    def __init__(self, sessions: SessionFactory, *, hasher: PasswordHasher | None = None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._hasher = hasher or PasswordHasher()
        self._clock = clock

    def joined(self, session: Session) -> StaffAccounts:
        """The same accounts, their calls run in ``session``'s open transaction (and commit with it)."""
        return StaffAccounts(joined(session), hasher=self._hasher, clock=self._clock)

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash(secrets.token_hex(16))

    # --- accounts ---------------------------------------------------------------------------

    def create(self, new: NewStaff) -> Staff:
        _check_new(new)
        row = StaffUser(username=new.username, display_name=new.display_name.strip(), role=new.role,
                        service_point_id=new.service_point_id, partner_base_id=new.partner_base_id,
                        password_hash=self._hasher.hash(new.password), created_at=self._clock())
        with self._sessions() as session, session.begin():
            if repo.user_by_name(session, username=new.username) is not None:
                raise Conflict(f"staff user {new.username!r} exists", reason="duplicate_username")
            repo.add(session, row=row)
            return Staff.of(row)

    def list(self) -> list[StaffListing]:
        now = self._clock()
        with self._sessions() as session:
            return [StaffListing(u.username, u.display_name, u.role,
                                 u.service_point_id or u.partner_base_id or "", u.disabled,
                                 bool(u.locked_until and u.locked_until > now))
                    for u in repo.all_users(session)]

    def disable(self, username: str) -> None:
        with self._sessions() as session, session.begin():
            user = _existing(session, username)
            user.disabled = True
            repo.delete_sessions_of(session, user_id=_id(user))

    def set_password(self, username: str, password: str) -> None:
        check_password_rules(password)
        hashed = self._hasher.hash(password)
        with self._sessions() as session, session.begin():
            user = _existing(session, username)
            user.password_hash, user.failed_logins, user.locked_until = hashed, 0, None
            repo.delete_sessions_of(session, user_id=_id(user))

    def unlock(self, username: str) -> None:
        """Clear a lock-out after failed sign-ins (the password stays as it is)."""
        with self._sessions() as session, session.begin():
            user = _existing(session, username)
            user.failed_logins, user.locked_until = 0, None

    # --- login --------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> Staff:
        """The user for a right username/password; counts failures and locks out after five."""
        with self._sessions() as session, session.begin():
            outcome = self._check_login(session, username, password)
        if isinstance(outcome, Staff):
            return outcome
        raise LoginRefused(_REFUSALS[outcome], reason=outcome)

    def _check_login(self, session: Session, username: str, password: str) -> Staff | str:
        now = self._clock()
        user = repo.user_by_name(session, username=username)
        if user is None:
            self._verify(self._dummy_hash, password)
            return "bad_credentials"
        if user.locked_until is not None and user.locked_until > now:
            self._verify(self._dummy_hash, password)  # as slow as any other refusal
            return "locked"
        if not self._verify(user.password_hash, password):
            self._count_failure(user, now)
            return "bad_credentials"
        if user.disabled:
            return "disabled"
        user.failed_logins, user.locked_until = 0, None
        return Staff.of(user)

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def _count_failure(self, user: StaffUser, now: dt.datetime) -> None:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.failed_logins, user.locked_until = 0, now + LOCKOUT
            log.warning("staff user %s locked for %s after %d failures", user.id, LOCKOUT, MAX_FAILURES)

    # --- sessions -----------------------------------------------------------------------------

    def start_session(self, staff: Staff) -> str:
        """A new session for ``staff``; the returned id goes to the browser and is stored hashed."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._sessions() as session, session.begin():
            repo.delete_sessions_before(session, created=now - ABSOLUTE_TIMEOUT, seen=now - IDLE_TIMEOUT)
            repo.add(session, row=StaffSession(token_hash=token_hash(token), user_id=staff.id,
                                               created_at=now, last_seen_at=now))
        return token

    def resume(self, token: str) -> Staff:
        """The user of a live session (and note the activity); expired or unknown → LoginRefused."""
        now = self._clock()
        with self._sessions() as session, session.begin():
            row = repo.session_by_hash(session, token_hash=token_hash(token))
            if row is None:
                raise LoginRefused("no such session", reason="expired")
            user = repo.user_by_id(session, user_id=row.user_id)
            if _expired(row, now) or user is None or user.disabled:
                repo.delete_session(session, token_hash=row.token_hash)
                raise LoginRefused("session expired", reason="expired")
            if now - row.last_seen_at >= TOUCH_EVERY:
                row.last_seen_at = now
            return Staff.of(user)

    def end_session(self, token: str) -> None:
        with self._sessions() as session, session.begin():
            repo.delete_session(session, token_hash=token_hash(token))

    # --- form nonces --------------------------------------------------------------------------

    def once(self, staff: Staff, nonce: str, work: Callable[[], str]) -> tuple[str, bool]:
        """Run ``work`` once per form nonce; returns ``(result, first)``.

        A form submitted again (double click, back + resubmit, a retried request) gets the result
        of its first submission (``first`` False) and nothing is done twice. ``work`` runs in its
        own transactions (the workflow services own theirs); two submissions racing each other are
        refused by the workflow's own state checks, and the loser's nonce row is not written.
        """
        if not nonce or len(nonce) > 64:
            raise InvalidRecord("form without a valid nonce", field="nonce", reason="stale_form")
        with self._sessions() as session:
            earlier = repo.nonce(session, value=nonce)
            if earlier is not None:
                return earlier.result, False
        result = work()
        try:
            with self._sessions() as session, session.begin():
                repo.add(session, row=FormNonce(nonce=nonce, user_id=staff.id, used_at=self._clock(),
                                                result=result[:500]))
        except IntegrityError:
            log.info("form nonce recorded by a concurrent submission")
        return result, True


def _expired(row: StaffSession, now: dt.datetime) -> bool:
    return now - row.created_at > ABSOLUTE_TIMEOUT or now - row.last_seen_at > IDLE_TIMEOUT


def _existing(session: Session, username: str) -> StaffUser:
    user = repo.user_by_name(session, username=username)
    if user is None:
        raise NotFound(f"no staff user {username!r}", reason="unknown_staff_user")
    return user


def _id(user: StaffUser) -> int:
    if user.id is None:
        raise NotFound("staff user not yet stored", reason="unknown_staff_user")
    return user.id
