"""`cardsvc serve --workers 2`: one SO_REUSEPORT socket per worker, connections spread, a dead worker
replaced on its own socket (:mod:`cardsvc.cli.workers`).

With uvicorn's shared listening socket, a burst of new connections all went to whichever worker
woke first (asyncio accepts the whole backlog per wake-up): 30 of 32 on one worker, the other idle.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from cardsvc.cli.workers import reuseport_sockets, serve_app
from cardsvc.errors import ConfigError
from tests.api.test_serve import _start, _stop, _wait_up

pytestmark = pytest.mark.slow
LISTEN, ESTABLISHED = "0A", "01"


def _tcp_sockets(port: int, state: str) -> set[int]:
    """Inodes of the IPv4 TCP sockets on local ``port`` in ``state`` (``/proc/net/tcp``)."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == state:
                found.add(int(fields[9]))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _workers(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text()]


def _wait_for(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_each_worker_listens_on_its_own_socket_and_gets_connections(tmp_path: Path) -> None:
    base, proc = _start(tmp_path)
    port = int(base.rsplit(":", 1)[1])
    try:
        _wait_up(base, proc)
        _wait_for(lambda: len(_tcp_sockets(port, LISTEN)) == 2, "two listening sockets")
        workers = _workers(proc.pid)
        assert len(workers) == 2
        clients = [httpx.Client(base_url=base, timeout=10) for _ in range(32)]  # one connection each
        try:
            for client in clients:
                assert client.get("/healthz").status_code == 200
            established = _tcp_sockets(port, ESTABLISHED)
            held = [len(_socket_inodes(pid) & established) for pid in workers]
        finally:
            for client in clients:
                client.close()
    finally:
        assert _stop(proc) == 0
    assert sum(held) == 32
    assert min(held) >= 4, held  # hash spread: P(≤ 3 of 32 on one worker) ≈ 1e-6


def test_a_killed_worker_is_replaced_on_its_socket(tmp_path: Path) -> None:
    base, proc = _start(tmp_path)
    port = int(base.rsplit(":", 1)[1])
    try:
        _wait_up(base, proc)
        _wait_for(lambda: len(_tcp_sockets(port, LISTEN)) == 2, "two listening sockets")
        victim, survivor = _workers(proc.pid)
        os.kill(victim, signal.SIGKILL)
        assert httpx.get(base + "/healthz", timeout=10).status_code == 200  # served meanwhile
        _wait_for(lambda: len(_workers(proc.pid)) == 2 and victim not in _workers(proc.pid),
                  "a replacement worker")
        replacement = next(pid for pid in _workers(proc.pid) if pid != survivor)
        _wait_for(lambda: bool(_socket_inodes(replacement) & _tcp_sockets(port, LISTEN)),
                  "the replacement to listen")
        for _ in range(10):
            assert httpx.get(base + "/healthz", timeout=10).status_code == 200
    finally:
        assert _stop(proc) == 0


def test_a_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve_app("cardsvc.web.app:app_from_env", host="127.0.0.1", port=port, workers=2,
                      log_level="warning")


def test_reuseport_sockets_share_one_port() -> None:
    sockets = reuseport_sockets("127.0.0.1", 0, 3)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1 and ports != {0}
        assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
