"""Worker processes that each listen on their own ``SO_REUSEPORT`` socket (``cardsvc serve --workers N``).

uvicorn's own supervisor hands one listening socket to every worker. asyncio then accepts up to the
whole backlog of pending connections in one wake-up, so a burst of new keep-alive connections — a
proxy's pool, the terminals of a service centre reconnecting after an outage, a load test — lands
on whichever worker woke first and stays there while the other workers idle (measured: 30 of 32
connections on one of two workers, the machine half idle). Here every worker gets a socket of its
own, bound to the same address with ``SO_REUSEPORT``, and the kernel spreads new connections over
them by their address hash.

The supervisor itself is small: start the workers (uvicorn's ``Process`` does the spawning and
the health pings), restart one that dies on its own socket, stop all on
SIGINT / SIGTERM. A worker that dies before it started serving (a broken app or settings) stops the
whole server instead of restarting in a loop.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from types import FrameType

import uvicorn
from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Process

from cardsvc.errors import ConfigError

log = logging.getLogger("uvicorn.error")
CHECK_EVERY_S = 0.5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_app(app: str, *, host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the ASGI app factory ``module:function`` on ``host:port``: in this process for one
    worker, else one ``SO_REUSEPORT`` socket and process per worker (:class:`ReusePortSupervisor`)."""
    config = Config(app, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                    server_header=False)
    if workers == 1:
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it stopped on
            uvicorn.Server(config).run()
        return
    try:
        sockets = reuseport_sockets(host, port, workers)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    ReusePortSupervisor(config, sockets).run()


def reuseport_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to ``(host, port)`` with ``SO_REUSEPORT`` (listening starts in the workers).

    With port 0 the first socket picks a free port and the others join it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class ReusePortSupervisor:
    """Runs one uvicorn worker per socket until SIGINT / SIGTERM."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.processes: list[Process] = []
        self.should_exit = threading.Event()

    def run(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        self.processes = [self._spawn(sock) for sock in self.sockets]
        host, port = self.sockets[0].getsockname()[:2]
        log.info("%d workers on http://%s:%d, one SO_REUSEPORT socket each", len(self.processes), host, port)
        try:
            while not self.should_exit.wait(CHECK_EVERY_S):
                self.replace_dead()
        finally:
            self._stop_all()

    def replace_dead(self) -> None:
        """Restart every worker that died (or hangs) on its own socket; stop all on a start-up failure."""
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set() or process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s failed to start: stopping the server", process.pid)
                self.should_exit.set()
                return
            log.warning("worker %s died (exit code %s): starting another", process.pid, process.exitcode)
            self.processes[index] = self._spawn(self.sockets[index])

    def _spawn(self, sock: socket.socket) -> Process:
        process = Process(self.config, [sock])
        process.start()
        return process

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping the workers", signal.Signals(signum).name)
        self.should_exit.set()

    def _stop_all(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join()
        for sock in self.sockets:
            sock.close()
