"""The README is executable: its set-up commands are the two of ``tools/dev.sh`` and its tour runs.

The tour's ```sh blocks run in order, as written, in ONE bash session (``set -euo pipefail``: the
first failing command fails the test — nothing is skipped) in a temporary working directory, next to
the demo started exactly as ``tools/dev.sh demo`` starts it (``python -m cardsvc.demo``; the real
PC/SC stack: a private pcscd, vpcd readers and emulated blank cards; SQLite and the file key store).
Afterwards the test checks what the tour should have left behind, and walks the tour's "in the
browser" part over HTTP (httpx): each demo staff user signs in through ``/login`` with the password
``demo.env`` holds and opens a page of that role; a partner session is refused on a desk page.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
import typer.main

from cardsvc.cli.main import build_app
from cardsvc.demo import DEMO_USERS
from tests.test_demo import STOP_TIMEOUT_S, DemoProcess, clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TOUR_HEADING = "## Five-minute tour"
TOUR_TIMEOUT_S = 240
NEW_MEMBERS = 8
CARDS_PER_READER = 8  # the tour issues 8 cards on 2 readers; a spare stack keeps the wait short
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# role -> (a page of that role, a zh-CN label it shows); the README's "In the browser" names them
ROLE_PAGES = {
    "admin": ("/admin", "统计概览"),
    "clerk": ("/desk/batches", "制卡批次"),
    "service_point": ("/point", "会员刷卡服务"),
    "partner": ("/partner", "入住核验"),
}


def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start: end if end != -1 else len(text)]


def sh_blocks(text: str) -> list[str]:
    return [block.strip() for block in _BLOCK.findall(text)]


def tour() -> list[str]:
    return sh_blocks(section(README.read_text(encoding="utf-8"), TOUR_HEADING))


def test_setup_is_exactly_the_two_dev_sh_commands() -> None:
    setup = section(README.read_text(encoding="utf-8"), "## Set up")
    assert sh_blocks(setup) == ["tools/dev.sh demo", "tools/dev.sh test"]
    dev_sh = (ROOT / "tools" / "dev.sh").read_text(encoding="utf-8")
    assert 'exec python -m cardsvc.demo "$@"' in dev_sh  # what this test starts for the demo


def test_tour_commands_name_real_cardsvc_commands() -> None:
    root = typer.main.get_command(build_app())
    groups: dict[str, object] = root.commands  # type: ignore[attr-defined]
    command_re = re.compile(r"^(?:\S+=\$\(|\S+=\S+ )?cardsvc ([a-z-]+)(?: ([a-z-]+))?", re.MULTILINE)
    used = command_re.findall("\n".join(tour()))
    assert len(used) >= 10
    for command, sub in used:
        assert command in groups, command
        subcommands = getattr(groups[command], "commands", None)
        if subcommands is not None:
            assert sub in subcommands, (command, sub)


def test_readme_tour_runs_end_to_end(tmp_path: Path) -> None:
    blocks = tour()
    assert blocks, "the tour has no ```sh blocks"
    demo = DemoProcess(tmp_path, free_port(), "--cards", str(CARDS_PER_READER))
    try:
        demo.wait_ready()
        result = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(blocks)],
                                cwd=tmp_path, env=clean_env(), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=TOUR_TIMEOUT_S, check=False)
        assert result.returncode == 0, f"tour failed:\n{result.stdout}\n{result.stderr}\n{demo.output()}"
        _check_effects(tmp_path / "var", result.stdout)
        _check_browser_part(demo.url, _demo_passwords(tmp_path))
        demo.process.send_signal(signal.SIGINT)
        assert demo.process.wait(STOP_TIMEOUT_S) == 0, demo.output()
        # the tapped card went back to an image of its own when the demo stopped
        assert len(list((tmp_path / "var" / "cards" / "tap").glob("*.json"))) == 1
    finally:
        demo.kill()


def _check_effects(var: Path, stdout: str) -> None:
    assert "8 rows read: 8 created" in stdout
    qr_files = sorted(var.glob("qr/*.png"))
    assert len(qr_files) == NEW_MEMBERS
    assert (var / "tour-g4.pdf").read_bytes().startswith(b"%PDF")
    assert (var / "import-report.xlsx").stat().st_size > 0
    number = qr_files[0].stem
    assert f'"outcome":"OK","reason":null,"method":"qr","card_number":"{number}"' in stdout
    assert f'"item":"legal_consultation","card_number":"{number}"' in stdout
    assert '"programme":"demo-beidaihe"' in stdout and '"quota_left":19' in stdout
    assert f"OK card {number}" in stdout
    assert "refused, as it should be" in stdout
    assert stdout.index('<h1 class="ok">') < stdout.index('<h1 class="nok">')  # phone tap, then replay
    assert stdout.count("OK card") == 2  # the reader tap and the offline check before the loss


def _demo_passwords(workdir: Path) -> dict[str, str]:
    """username -> password, as a second shell gets them from ``source var/demo.env``."""
    variables = " ".join(f'"${user.variable}"' for user in DEMO_USERS)
    shown = subprocess.run(["bash", "-c", f"source var/demo.env && printf '%s\\n' {variables}"],
                           cwd=workdir, env=clean_env(), capture_output=True, text=True, timeout=10,
                           check=True).stdout.splitlines()
    assert len(shown) == len(DEMO_USERS) and all(shown), "demo.env lacks a staff password"
    return {user.username: password for user, password in zip(DEMO_USERS, shown, strict=True)}


def sign_in(base_url: str, username: str, password: str) -> httpx.Client:
    """A client signed in through the login form (pre-login cookie + its CSRF token)."""
    client = httpx.Client(base_url=base_url, timeout=15)
    form = client.get("/login")
    assert form.status_code == 200, form.text
    token = _CSRF.search(form.text)
    assert token is not None, "no CSRF field on /login"
    done = client.post("/login", data={"csrf": token.group(1), "username": username,
                                       "password": password, "next": "/"})
    assert done.status_code == 303, (username, done.status_code, done.text[:500])
    assert "cardsvc_session" in client.cookies, username
    return client


def _check_browser_part(base_url: str, passwords: dict[str, str]) -> None:
    for user in DEMO_USERS:
        path, label = ROLE_PAGES[user.role.value]
        client = sign_in(base_url, user.username, passwords[user.username])
        try:
            page = client.get(path)
            assert page.status_code == 200, (user.username, path, page.status_code)
            assert label in page.text, (user.username, path)
            if user.role.value == "clerk":
                _check_desk(client)
            if user.role.value == "partner":
                refused = client.get("/desk/batches")
                assert refused.status_code == 403
                assert 'id="error-message"' in refused.text and "tour-g4" not in refused.text
        finally:
            client.close()


def _check_desk(client: httpx.Client) -> None:
    """The clerk sees the tour's batch and its progress, then switches the pages to English."""
    assert "tour-g4" in client.get("/desk/batches").text
    progress = client.get("/desk/batches/tour-g4/progress")
    assert progress.status_code == 200 and progress.headers["content-type"].startswith("application/json")
    english = client.get("/lang", params={"to": "en", "next": "/desk/batches"}, follow_redirects=True)
    assert english.status_code == 200 and "Card batches" in english.text
