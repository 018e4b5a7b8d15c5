"""`cardsvc serve` for real: uvicorn with two worker processes on a loopback port.

Checks the factory path (settings from CARDSVC_*), problem+json through a real server, Prometheus
counts aggregated across both workers, and a clean shutdown that removes the metrics directory.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # two workers importing the app on a loaded 2-core box took > 20 s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "cardsvc serve exited early"
        try:
            if httpx.get(base + "/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("cardsvc serve did not answer /healthz within 60 s")


def _start(tmp_path: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARDSVC_", "PROMETHEUS_"))}
    env.update(CARDSVC_ENV="test", CARDSVC_DATA_DIR=str(tmp_path), TMPDIR=str(tmp_path),
               CARDSVC_KEY_PASSPHRASE="serve-test-passphrase")
    cli = [sys.executable, "-c", "from cardsvc.cli.main import run; run()"]
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True, timeout=60)  # schema at head
    cmd = [*cli, "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", proc


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("cardsvc serve did not stop on SIGINT")


HEALTH_COUNT = re.compile(r'cardsvc_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)')


def test_serve_two_workers(tmp_path: Path) -> None:
    base, proc = _start(tmp_path)
    try:
        _wait_up(base, proc)  # one successful /healthz
        for _ in range(20):  # a new connection each time, so both workers serve some
            assert httpx.get(base + "/healthz", timeout=5).status_code == 200
        denied = httpx.get(base + "/v1/whoami", timeout=5)
        assert len(list(tmp_path.glob("cardsvc-metrics-*"))) == 1
        metrics = httpx.get(base + "/metrics", timeout=5).text
    finally:
        _stop(proc)
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/problem+json"
    assert "server" not in denied.headers
    match = HEALTH_COUNT.search(metrics)
    assert match is not None and float(match[1]) == 21  # both workers' samples, merged
    assert not list(tmp_path.glob("cardsvc-metrics-*")), "metrics directory removed on shutdown"
