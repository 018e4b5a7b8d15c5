"""``python -m cardsvc.demo`` (``tools/dev.sh demo``) as a user runs it: a process on embedded defaults.

The demo runs in a temporary working directory (so its data directory is the default ``./var``),
with a free API port. It must become ready, list its two virtual readers with blank NTAG 424 DNA
cards through the ``demo.env`` it writes, hold the 40 shipped sample members, and stop cleanly on
SIGINT: exit 0, no process left behind (pcscd included). Every wait is bounded.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cardsvc import demo
from cardsvc.config import get_settings
from cardsvc.credential import open_key_store
from cardsvc.demo import readers as demo_readers
from cardsvc.demo.staff import StaffLogins
from cardsvc.emulator.images import factory_for, save_image
from cardsvc.emulator.pcscd import SOCKET_ENV, HarnessError
from cardsvc.errors import CardsvcError
from cardsvc.registry.db import engine_for, session_factory
from cardsvc.registry.staff import StaffAccounts

demo_main = importlib.import_module("cardsvc.demo.main")  # the package's `main` is the function
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
SAMPLE_MEMBERS = 40
SAMPLE_ORGS = 9


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """The caller's environment without cardsvc settings or a PC/SC socket override."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CARDSVC_") and k != SOCKET_ENV}


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: pid → ppid)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def processes_mentioning(path: Path) -> list[int]:
    """Live processes whose command line names ``path`` (the private pcscd names its config dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if str(path).encode() in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class DemoProcess:
    def __init__(self, workdir: Path, port: int, *extra: str) -> None:
        self.workdir, self.port = workdir, port
        self.log = workdir / "demo.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cardsvc.demo", "--port", str(port), "--cards", "3", *extra],
                cwd=workdir, env=clean_env(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"demo exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        pytest.fail(f"demo not ready within {READY_TIMEOUT_S:g} s:\n{self.output()}")

    def shell(self, command: str) -> subprocess.CompletedProcess[str]:
        """``command`` in bash after ``source var/demo.env``, as the banner tells users to."""
        return subprocess.run(["bash", "-c", f"source var/demo.env && {command}"],
                              cwd=self.workdir, env=clean_env(), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=False)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def running_demo(workdir: Path) -> Iterator[DemoProcess]:
    process = DemoProcess(workdir, free_port())
    try:
        yield process
    finally:
        process.kill()


def test_demo_runs_on_embedded_defaults_and_stops_cleanly(running_demo: DemoProcess, workdir: Path) -> None:
    running_demo.wait_ready()
    assert httpx.get(f"{running_demo.url}/healthz", timeout=5).json() == {"status": "ok"}

    readers = running_demo.shell("cardsvc readers --json")
    assert readers.returncode == 0, readers.stderr
    listed = json.loads(readers.stdout)
    assert len(listed) == 2
    for reader in listed:
        assert reader["atr"], reader
        assert "ntag424-dna" in reader["profiles"], reader

    whoami = running_demo.shell('curl -sS --fail-with-body -H "Authorization: Bearer '
                                '$CARDSVC_DEMO_PARTNER_TOKEN" "$CARDSVC_API/v1/whoami"')
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["role"] == "partner"
    assert (workdir / "var" / "demo.env").stat().st_mode & 0o077 == 0  # it holds tokens

    counts = demo.registry_counts(get_settings(data_dir=workdir / "var"))
    assert counts == {"organisations": SAMPLE_ORGS, "members": SAMPLE_MEMBERS}
    assert "first step" in running_demo.output()
    assert f"{running_demo.url}/login" in running_demo.output()
    staff = running_demo.shell('printf "%s" "$CARDSVC_DEMO_CLERK_PASSWORD"')
    assert staff.returncode == 0 and len(staff.stdout) >= 20, staff.stderr
    assert f"password {staff.stdout}  (new: shown once" in running_demo.output()

    children = descendants(running_demo.process.pid)
    assert any("pcscd" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace") for pid in children)
    running_demo.process.send_signal(signal.SIGINT)
    assert running_demo.process.wait(STOP_TIMEOUT_S) == 0, running_demo.output()
    assert "demo stopped" in running_demo.output()
    _assert_gone(children)
    assert not processes_mentioning(workdir)


def _assert_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)], "processes left behind"


def test_port_in_use_fails_with_a_message_and_leaves_nothing(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = DemoProcess(workdir, taken.getsockname()[1])
        try:
            code = process.process.wait(READY_TIMEOUT_S)
        finally:
            process.kill()
    assert code == 1, process.output()
    assert "`cardsvc serve" in process.output()
    assert not processes_mentioning(workdir)


def test_prepare_is_idempotent(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(workdir / "var"))
    monkeypatch.setenv("CARDSVC_ISSUER", demo.DEMO_ISSUER)
    settings = get_settings()
    first = demo.prepare(settings)
    second = demo.prepare(settings)
    assert first == second == {"organisations": SAMPLE_ORGS, "members": SAMPLE_MEMBERS}
    assert len(open_key_store(settings).issuer_keys()) == 1


def test_failed_cli_step_raises_demo_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(workdir / "var"))
    with pytest.raises(demo.DemoError, match="members import"):
        demo.cli("members", "import", str(workdir / "missing.csv"))


def test_env_file_survives_spaces_and_quotes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data dir with 'quotes'"
    data_dir.mkdir()
    settings = get_settings(data_dir=data_dir, issuer="DFTU")
    path = demo.write_env_file(settings, demo.Options(host="127.0.0.1", port=8123, readers=2, cards=1))
    shown = subprocess.run(
        ["bash", "-c", f'source "{path}" && printf "%s\\n" "$CARDSVC_DATA_DIR" "${SOCKET_ENV}" '
                       '"$CARDSVC_API" && command -v cardsvc'],
        env=clean_env(), capture_output=True, text=True, timeout=10, check=True).stdout.splitlines()
    assert shown[:3] == [str(data_dir), str(data_dir / "pcscd.comm"), "http://127.0.0.1:8123"]
    assert shown[3] == str(Path(sys.executable).parent / "cardsvc")


def test_no_readers_is_explained_and_the_demo_goes_on(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise HarnessError("cannot start a private pcscd: missing root privileges")

    monkeypatch.setattr(demo_readers, "check_prerequisites", refuse)
    monkeypatch.setattr(demo_readers, "listening_ports", set)
    settings = get_settings(data_dir=tmp_path)
    options = demo.Options(host="127.0.0.1", port=8123, readers=2, cards=1)
    with demo.virtual_readers(settings, options) as readers:
        assert readers.names == []
        assert readers.emulator is None and readers.pcscd is None
        assert "root privileges" in readers.note
        assert "35963-35964" in readers.note


def test_phone_tap_refuses_what_is_not_an_ntag_card(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path)
    fmcos = save_image(factory_for("fmcos").blank(), tmp_path / "fmcos.json")
    with pytest.raises(demo.DemoError, match="not an NTAG 424 DNA card"):
        demo.phone_tap(settings, fmcos)
    (tmp_path / "junk.json").write_text("{}", encoding="utf-8")
    assert demo.main(["phone-tap", str(tmp_path / "junk.json")]) == 1
    assert demo.main(["phone-tap"]) == 2


def test_phone_tap_on_a_blank_card_fails_closed(tmp_path: Path) -> None:
    """A blank card has no SUN URL yet: a typed error, no URL (the tour covers a real tap)."""
    settings = get_settings(data_dir=tmp_path)
    blank = save_image(factory_for("ntag424").blank(), tmp_path / "blank.json")
    with pytest.raises(CardsvcError):
        demo.phone_tap(settings, blank)


def test_demo_staff_users_get_random_passwords_kept_across_runs(workdir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(workdir / "var"))
    monkeypatch.setenv("CARDSVC_ISSUER", demo.DEMO_ISSUER)
    settings = get_settings()
    demo.prepare(settings)
    first = demo.ensure_demo_staff(settings)
    assert set(first.created) == {user.username for user in demo.DEMO_USERS}
    assert first.file.stat().st_mode & 0o077 == 0  # it holds passwords
    passwords = [first.passwords[user.username] for user in demo.DEMO_USERS]
    assert all(p is not None and len(p) >= 20 for p in passwords)
    assert len(set(passwords)) == len(passwords)  # random, one each

    again = demo.ensure_demo_staff(settings)
    assert again.created == () and again.passwords == first.passwords
    engine = engine_for(settings)
    try:
        accounts = StaffAccounts(session_factory(engine))
        for user in demo.DEMO_USERS:
            password = first.passwords[user.username]
            assert password is not None
            staff = accounts.authenticate(user.username, password)
            assert (staff.role, staff.service_point_id, staff.partner_base_id) == (
                user.role.value, user.service_point_id, user.partner_base_id)
    finally:
        engine.dispose()
    assert again.env()["CARDSVC_DEMO_PARTNER_PASSWORD"] == first.passwords["demo-partner"]


def test_demo_staff_users_are_refused_outside_dev(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path, env="production", key_passphrase="a real secret 123")
    with pytest.raises(demo.DemoError, match="refused outside CARDSVC_ENV=dev"):
        demo.ensure_demo_staff(settings)
    assert not (tmp_path / "demo-staff.env").exists()


def test_banner_shows_a_password_only_on_the_run_that_made_it(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(demo_main, "say", lines.append)
    env_file = tmp_path / "demo.env"
    logins = StaffLogins(passwords={"demo-admin": "fresh-admin-secret", "demo-clerk": "kept-clerk-secret",
                                    "demo-point": None, "demo-partner": "kept-partner-secret"},
                         created=("demo-admin",), file=tmp_path / "demo-staff.env")
    demo_main._staff_lines("http://127.0.0.1:8123", logins, env_file)
    shown = "\n".join(lines)
    assert "http://127.0.0.1:8123/login" in lines[0]
    assert "fresh-admin-secret" in shown
    assert "kept-clerk-secret" not in shown and "$CARDSVC_DEMO_CLERK_PASSWORD" in shown
    assert "demo-point" in shown and "password not known here" in shown
    assert "CARDSVC_DEMO_SERVICE_POINT_PASSWORD" not in logins.env()
