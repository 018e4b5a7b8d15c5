"""Browser harness: Debian's Chromium driven headless by Playwright against a real running cardsvc.

* :func:`require_chromium` fails loudly (never skips) when ``/usr/bin/chromium`` is missing: install
  the Debian package ``chromium`` (``tools/dev.sh`` does as root). Playwright never downloads a
  browser here; it is launched with ``executable_path``.
* :class:`LiveServer` is the real app in a subprocess (``cardsvc serve`` on a free loopback port,
  SQLite and development keys in a temporary data directory, sample organisations/members and the
  verification reference data from the demo's ``prepare``), with one staff user per role
  (:data:`STAFF`), created through ``cardsvc users create``.
* Fixtures (registered by ``tests/web/conftest.py``): ``live_server`` (one per session),
  ``browser`` (one per session), ``page`` (desktop, fresh cookies per test), ``phone_page``
  (375 px wide), ``login`` (``login(page, Role.clerk)`` signs in through the login form).
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from cardsvc.verification.roles import Role

CHROMIUM = Path(os.environ.get("CARDSVC_CHROMIUM", "/usr/bin/chromium"))
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 375, "height": 740}
STARTUP_S = 40.0
STAFF_PASSWORD = "correct horse battery staple 42"  # test-only; real ones come from a prompt

# username -> (role, display name, binding option for `cardsvc users create`)
STAFF: dict[Role, tuple[str, str, tuple[str, ...]]] = {
    Role.admin: ("admin1", "管理员甲", ()),
    Role.clerk: ("clerk1", "制卡员乙", ()),
    Role.service_point: ("sp1", "服务站丙", ("--service-point", "sp-district-centre")),
    Role.partner: ("partner1", "疗养基地丁", ("--partner-base", "base-beidaihe")),
}

_REPO = Path(__file__).resolve().parent.parent.parent
_CLI = (sys.executable, "-c", "from cardsvc.cli.main import run; run()")
_PREPARE = ("from cardsvc.config import get_settings; from cardsvc.demo import prepare; "
            "prepare(get_settings())")


def require_chromium() -> Path:
    """The Chromium binary, or a loud failure that says how to install it."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install the Debian package 'chromium' "
                    "(tools/dev.sh does it as root) or set CARDSVC_CHROMIUM", pytrace=False)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """``cardsvc serve`` in a subprocess over a prepared data directory."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CARDSVC_", "PROMETHEUS_"))}
        env.update(CARDSVC_ENV="dev", CARDSVC_DATA_DIR=str(self.data_dir), CARDSVC_LOG_LEVEL="WARNING",
                   CARDSVC_PUBLIC_BASE_URL=self.base_url, CARDSVC_RATE_LIMIT_BURST="100000",
                   CARDSVC_RATE_LIMIT_PER_SECOND="100000",
                   # one server for the whole suite, every sign-in from 127.0.0.1
                   CARDSVC_LOGIN_RATE_BURST="100000", CARDSVC_LOGIN_RATE_PER_SECOND="100000")
        return env

    def url(self, path: str) -> str:
        return self.base_url + path

    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        """Run one ``cardsvc`` command against this server's data; fail loudly with its output."""
        env = self.env | (extra_env or {})
        done = subprocess.run([*_CLI, *args], env=env, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.fail(f"cardsvc {' '.join(args)} exited {done.returncode}: "
                        f"{done.stderr.decode(errors='replace')[-2000:]}", pytrace=False)
        return done.stdout.decode()

    def prepare(self, *, staff: bool = True) -> None:
        """Data like the demo's (schema, dev keys, sample registry, reference data) and, with
        ``staff``, one user per role of :data:`STAFF` — in ONE subprocess (each one costs seconds)."""
        users = [(username, role.value, display, _binding(option))
                 for role, (username, display, option) in STAFF.items()] if staff else []
        script = _PREPARE + f"; from tests.support.browser import add_staff_users; add_staff_users({users!r})"
        done = subprocess.run([sys.executable, "-c", script], env=self.env, capture_output=True,
                              timeout=300, check=False, cwd=_REPO)
        if done.returncode != 0:
            pytest.fail(f"preparing the live server's data failed: "
                        f"{done.stderr.decode(errors='replace')[-2000:]}", pytrace=False)

    def start(self) -> LiveServer:
        with (self.data_dir / "serve.log").open("wb") as log:
            self.proc = subprocess.Popen([*_CLI, "serve", "--port", str(self.port)], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        self._wait_up()
        return self

    def _wait_up(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"cardsvc serve exited early: {self.log_tail()}", pytrace=False)
            try:
                if httpx.get(self.url("/healthz"), timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail(f"cardsvc serve did not answer within {STARTUP_S:.0f} s: {self.log_tail()}",
                    pytrace=False)

    def log_tail(self) -> str:
        path = self.data_dir / "serve.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_live_server(data_dir: Path, *, staff: bool = True) -> LiveServer:
    server = LiveServer(data_dir)
    server.prepare(staff=staff)
    return server.start()


def _binding(option: tuple[str, ...]) -> dict[str, str]:
    names = {"--service-point": "service_point_id", "--partner-base": "partner_base_id"}
    return {names[option[0]]: option[1]} if option else {}


def add_staff_users(users: list[tuple[str, str, str, dict[str, str]]]) -> None:
    """Create staff users in the configured database (run inside the preparing subprocess)."""
    from cardsvc.config import get_settings
    from cardsvc.registry.db import engine_for, session_factory
    from cardsvc.registry.staff import NewStaff, StaffAccounts

    accounts = StaffAccounts(session_factory(engine_for(get_settings())))
    for username, role, display, binding in users:
        accounts.create(NewStaff(username=username, display_name=display, role=role,
                                 password=STAFF_PASSWORD, **binding))


# --- fixtures (imported by tests/web/conftest.py) ----------------------------------------------


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_live_server(tmp_path_factory.mktemp("web-live"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(
        executable_path=str(require_chromium()), headless=True, args=["--no-sandbox"])
    yield launched
    launched.close()


def _new_page(browser: Browser, live_server: LiveServer, viewport: ViewportSize) -> Page:
    context = browser.new_context(viewport=viewport, base_url=live_server.base_url, locale="zh-CN",
                                  accept_downloads=True)
    context.set_default_timeout(15_000)
    return context.new_page()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    made = _new_page(browser, live_server, DESKTOP)
    yield made
    made.context.close()


@pytest.fixture
def phone_page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    made = _new_page(browser, live_server, PHONE)
    yield made
    made.context.close()


def login_as(page: Page, role: Role) -> None:
    """Sign in through the login form as the suite's staff user of ``role``."""
    username = STAFF[role][0]
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-user]")


@pytest.fixture
def login() -> Callable[[Page, Role], None]:
    return login_as


# --- accessibility and screenshots ---------------------------------------------------------------

DOCS_IMG = Path(__file__).resolve().parent.parent.parent / "docs" / "img"
AXE_URL = "/static/vendor/axe.min.js"  # built by tools/build_web_assets.sh (axe-core from npm)
_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


def serious_accessibility_violations(page: Page) -> list[dict[str, object]]:
    """axe-core's serious and critical violations on the current page (labels, contrast, focus …)."""
    if page.evaluate("typeof axe") == "undefined":
        response = page.request.get(AXE_URL)
        if response.status != 200:
            pytest.fail(f"{AXE_URL} is missing (HTTP {response.status}): run tools/build_web_assets.sh",
                        pytrace=False)
        page.add_script_tag(url=AXE_URL)
    violations: list[dict[str, object]] = page.evaluate(_AXE_RUN)
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def screenshot(page: Page, name: str) -> Path:
    """Save the visible page as ``docs/img/<name>.png`` (used by docs/web.md), as a small
    palette PNG (flat UI colours survive 64 colours; ~3x smaller than the raw screenshot)."""
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    target = DOCS_IMG / f"{name}.png"
    raw = page.screenshot(full_page=False, animations="disabled", caret="hide")
    with Image.open(io.BytesIO(raw)) as image:
        image.convert("RGB").quantize(colors=64).save(target, optimize=True)
    return target
