"""A throwaway PostgreSQL server for the suite (and the import bench).

``PostgresServer.start()`` runs ``initdb`` as the unprivileged user ``nobody`` (PostgreSQL refuses to
run as root) into a fresh temporary directory, with a private socket directory and a free port, and
starts it with ``pg_ctl``. ``stop()`` shuts it down and removes everything. It never touches the
machine's own PostgreSQL on :5432. If the server cannot start the error says why, loudly: the
PostgreSQL tests are part of the suite and must not turn into skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
SUPERUSER = "cardsvc"
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresUnavailable(RuntimeError):
    """The throwaway server could not be started; the message says why."""


def pg_bin() -> Path:
    env = os.environ.get("CARDSVC_PG_BIN")
    for candidate in ((env,) if env else ()) + PG_BIN_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresUnavailable(f"no PostgreSQL binaries in {PG_BIN_CANDIDATES} (set CARDSVC_PG_BIN)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user() -> list[str]:
    return ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []


@dataclass
class PostgresServer:
    root: Path
    port: int
    durable: bool = False
    template: str | None = None  # a migrated database that tests copy (CREATE DATABASE … TEMPLATE)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def url(self, database: str = "postgres") -> str:
        return (f"postgresql+psycopg://{SUPERUSER}@/{database}"
                f"?host={self.socket_dir}&port={self.port}")

    def dsn(self, database: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={database}"

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresServer:
        root = Path(tempfile.mkdtemp(prefix="cardsvc-pg-"))
        server = cls(root=root, port=free_port(), durable=durable)
        try:
            server._init_and_start()
        except BaseException:
            server.stop()
            raise
        return server

    def _init_and_start(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody")
            shutil.chown(self.socket_dir, "nobody")
        self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        options = [f"-p {self.port}", f"-k {self.socket_dir}", "-h 127.0.0.1"]
        if not self.durable:
            options += [f"-c {s}" for s in FAST_SETTINGS]
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w",
                  "-t", "60", "-o", " ".join(options), "start")

    def _run(self, tool: str, *args: str) -> None:
        command = [*_as_postgres_user(), str(pg_bin() / tool), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{tool} failed ({result.returncode}): {result.stderr.strip()}"
                                      f"{self._log_tail()}")

    def _log_tail(self) -> str:
        log = self.root / "server.log"
        return f"\nserver log:\n{log.read_text()[-2000:]}" if log.exists() else ""

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, *, template: str | None = None) -> str:
        """A new empty database (optionally copied from ``template``); returns its name."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        clause = f" TEMPLATE {template}" if template else ""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{clause}")  # type: ignore[arg-type]
        return name

    def dump(self, database: str) -> bytes:
        """``pg_dump`` of ``database`` (plain SQL, data included)."""
        command = [str(pg_bin() / "pg_dump"), "-h", str(self.socket_dir), "-p", str(self.port),
                   "-U", SUPERUSER, database]
        return subprocess.run([*_as_postgres_user(), *command], capture_output=True, check=True,
                              timeout=120).stdout


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    server = PostgresServer.start(durable=durable)
    try:
        yield server
    finally:
        server.stop()
