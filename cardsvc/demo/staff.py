"""Demo staff users: one per role, so the web pages (``/login``) can be tried on embedded defaults.

On the first run each user gets a random password (``secrets``), kept in ``<data-dir>/demo-staff.env``
(mode 0600) and exported in ``demo.env``; later runs keep the users and their passwords. A user
that already exists without a kept password (made by hand with ``cardsvc users create``) is left
alone. Development only: refused outside ``CARDSVC_ENV=dev``, like the development keys.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path

from cardsvc.config import Environment, Settings
from cardsvc.demo.base import DEMO_PARTNER_BASE, DEMO_SERVICE_POINT, DemoError
from cardsvc.registry.db import engine_for, session_factory
from cardsvc.registry.staff import NewStaff, StaffAccounts
from cardsvc.verification.roles import Role

STAFF_FILE = "demo-staff.env"
PASSWORD_BYTES = 15  # 20 URL-safe characters, above the 10-character minimum


@dataclass(frozen=True)
class DemoUser:
    """One demo staff user; ``variable`` names its password in ``demo.env``."""

    username: str
    role: Role
    display_name: str
    service_point_id: str | None = None
    partner_base_id: str | None = None

    @property
    def variable(self) -> str:
        return f"CARDSVC_DEMO_{self.role.value.upper()}_PASSWORD"


DEMO_USERS = (
    DemoUser("demo-admin", Role.admin, "管理员(示范)"),
    DemoUser("demo-clerk", Role.clerk, "制卡员(示范)"),
    DemoUser("demo-point", Role.service_point, "服务站(示范)", service_point_id=DEMO_SERVICE_POINT),
    DemoUser("demo-partner", Role.partner, "疗休养基地(示范)", partner_base_id=DEMO_PARTNER_BASE),
)


@dataclass(frozen=True)
class StaffLogins:
    """What the banner shows: each user's password when known, and whether any was new this run."""

    passwords: dict[str, str | None]
    created: tuple[str, ...]
    file: Path

    def env(self) -> dict[str, str]:
        """The known passwords as ``demo.env`` variables."""
        return {user.variable: password for user in DEMO_USERS
                if (password := self.passwords.get(user.username)) is not None}


def ensure_demo_staff(settings: Settings) -> StaffLogins:
    """Create the missing demo users (random passwords, kept in a 0600 file); keep existing ones."""
    if settings.env is not Environment.dev:
        raise DemoError("demo staff users have generated passwords and are refused outside "
                        f"CARDSVC_ENV=dev (here {settings.env.value})")
    path = settings.data_dir / STAFF_FILE
    kept = read_kept(path)
    engine = engine_for(settings)
    try:
        accounts = StaffAccounts(session_factory(engine))
        existing = {listing.username for listing in accounts.list()}
        created = tuple(_create_missing(accounts, existing, kept))
    finally:
        engine.dispose()
    write_kept(path, kept)
    return StaffLogins(passwords={u.username: kept.get(u.username) for u in DEMO_USERS},
                       created=created, file=path)


def _create_missing(accounts: StaffAccounts, existing: set[str], kept: dict[str, str]) -> list[str]:
    created = []
    for user in DEMO_USERS:
        if user.username in existing:
            continue
        password = kept.setdefault(user.username, secrets.token_urlsafe(PASSWORD_BYTES))
        accounts.create(NewStaff(username=user.username, display_name=user.display_name,
                                 role=user.role.value, password=password,
                                 service_point_id=user.service_point_id,
                                 partner_base_id=user.partner_base_id))
        created.append(user.username)
    return created


def read_kept(path: Path) -> dict[str, str]:
    """``username=password`` lines of the 0600 file (missing file: nothing kept yet)."""
    if not path.exists():
        return {}
    kept = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            kept[name.strip()] = shlex.split(value)[0] if value.strip() else ""
    return kept


def write_kept(path: Path, kept: dict[str, str]) -> None:
    lines = ["# demo staff passwords (development only), written by `tools/dev.sh demo`"]
    lines += [f"{name}={shlex.quote(password)}" for name, password in sorted(kept.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
