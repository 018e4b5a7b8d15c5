"""A private pcscd with vpcd virtual readers, isolated from any system pcscd (tests, demo, bench).

How: ``unshare -m --propagation private`` gives pcscd its own mount namespace, where a tmpfs on
``/run/pcscd`` hides the system daemon's socket and pid file; pcscd runs in the foreground with a
reader.conf.d of our own (one vpcd entry per two readers, CHANNELID = the first of its two ports).
Clients reach it through ``PCSCLITE_CSOCK_NAME`` (read by the pcsc-lite *client* library only,
once per process, at the first ``SCardEstablishContext``). It points at a stable symlink that we
aim at ``/proc/<pcscd pid>/root/run/pcscd/pcscd.comm`` — so a restarted daemon is reachable at the
same name by a process that has already cached it.

Needs root (mount namespaces), ``unshare`` and ``setpriv`` (util-linux), ``pcscd`` and vsmartcard's
``libifdvpcd.so``. :func:`check_prerequisites` says exactly which one is missing.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cardsvc.errors import ReaderUnavailable

_log = logging.getLogger(__name__)

SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
READER_NAME = "Virtual PCD"
_VPCD_GLOBS = ("/usr/lib/pcsc/drivers/serial/libifdvpcd.so", "/usr/lib*/pcsc/drivers/serial/libifdvpcd.so",
               "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so")
_PORT_RANGE = (40000, 60000)


class HarnessError(ReaderUnavailable):
    """The private PC/SC stack cannot be started (names the missing piece)."""

    code = "pcsc_harness"
    hint = "run as root on a machine with pcscd, vsmartcard-vpcd and util-linux (tools/dev.sh installs them)"


def vpcd_driver() -> str | None:
    return next((hit for pattern in _VPCD_GLOBS for hit in sorted(glob.glob(pattern))), None)


def check_prerequisites() -> None:
    """Raise :class:`HarnessError` naming every missing prerequisite (never skip quietly)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root privileges (needed for a private mount namespace)")
    for tool in ("unshare", "mount", "setpriv"):
        if shutil.which(tool) is None:
            missing.append(f"`{tool}` (util-linux)")
    if _pcscd_binary() is None:
        missing.append("pcscd (Debian package pcscd)")
    if vpcd_driver() is None:
        missing.append("libifdvpcd.so (Debian package vsmartcard-vpcd)")
    if missing:
        raise HarnessError("cannot start a private pcscd: missing " + "; ".join(missing))


def _pcscd_binary() -> str | None:
    return shutil.which("pcscd") or next(
        (p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if os.access(p, os.X_OK)), None)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - vpcd itself binds INADDR_ANY
        except OSError:
            return False
    return True


def free_port_block(count: int, *, attempts: int = 200) -> int:
    """A base port P with P..P+count-1 all free (vpcd binds each reader's port)."""
    low, high = _PORT_RANGE
    for _ in range(attempts):
        base = random.randrange(low, high - count, 2)  # noqa: S311 - not security relevant
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise HarnessError(f"no block of {count} free TCP ports in {low}..{high}")


@dataclass
class PrivatePcscd:
    """A running private pcscd; ``ports[i]`` is the vpcd port of ``reader_names[i]``."""

    readers: int
    base_port: int
    workdir: Path
    socket_link: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "pcscd.log"

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(self.readers)]

    @property
    def reader_names(self) -> list[str]:
        return [f"{_friendly_name(i // 2)} 00 {i % 2:02X}" for i in range(self.readers)]

    @property
    def client_env(self) -> dict[str, str]:
        return {SOCKET_ENV: str(self.socket_link)}

    @property
    def pid(self) -> int:
        if self.process is None:
            raise HarnessError("private pcscd is not running")
        return self.process.pid

    def start(self, timeout_s: float = 10.0) -> PrivatePcscd:
        check_prerequisites()
        self._write_config()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, paths we created
                self._command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout_s)
        except HarnessError:
            self.stop()
            raise
        self._point_link()
        _log.info("private pcscd pid %d, readers on ports %s", self.pid, self.ports)
        return self

    def _command(self) -> list[str]:
        pcscd = _pcscd_binary() or "pcscd"
        script = ("mkdir -p /run/pcscd && mount -t tmpfs -o mode=0755 tmpfs /run/pcscd && "
                  f'exec "{pcscd}" --foreground --error -c "{self.workdir / "reader.conf.d"}"')
        # --pdeathsig: pcscd gets SIGTERM when the thread that started it dies, so a killed test
        # run or emulator never leaves a private pcscd behind (start it from a long-lived thread).
        return ["setpriv", "--pdeathsig", "TERM", "unshare", "-m", "--propagation", "private",
                "sh", "-c", script]

    def _write_config(self) -> None:
        confdir = self.workdir / "reader.conf.d"
        confdir.mkdir(parents=True, exist_ok=True)
        for entry in range((self.readers + 1) // 2):
            port = self.base_port + 2 * entry
            (confdir / f"vpcd{entry:02d}").write_text(
                f'FRIENDLYNAME "{_friendly_name(entry)}"\nDEVICENAME /dev/null:0x{port:04X}\n'
                f"LIBPATH {self._driver_copy(entry)}\nCHANNELID 0x{port:04X}\n", encoding="ascii")

    def _driver_copy(self, entry: int) -> str:
        """The vpcd driver for one config entry: a private copy for every entry after the first.

        libifdvpcd keeps its reader sockets in process-global state, so two entries sharing one
        loaded library overwrite each other (only the last entry's readers work). dlopen() of a
        copy at another path loads an independent instance.
        """
        driver = vpcd_driver() or "libifdvpcd.so"
        if entry == 0:
            return driver
        copy = self.workdir / f"libifdvpcd-{entry}.so"
        if not copy.exists():
            shutil.copy2(driver, copy)
        return str(copy)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        wanted = set(self.ports)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise HarnessError(f"private pcscd exited with {self.process.returncode}: "
                                   f"{self._log_tail()}")
            if self._socket_path().exists() and wanted <= listening_ports():
                return
            time.sleep(0.02)
        raise HarnessError(f"private pcscd not ready within {timeout_s:g} s: {self._log_tail()}")

    def _socket_path(self) -> Path:
        return Path(f"/proc/{self.pid}/root/run/pcscd/pcscd.comm")

    def _point_link(self) -> None:
        self.socket_link.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.socket_link.with_name(self.socket_link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(self._socket_path())
        os.replace(temporary, self.socket_link)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:].strip() or "(no output)"
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate pcscd (SIGTERM, then SIGKILL); the namespace and its tmpfs go with it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout_s)

    def __enter__(self) -> PrivatePcscd:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _friendly_name(entry: int) -> str:
    """vpcd entry 0 keeps the stock name; later entries get a suffix (pcscd would repeat "00 00")."""
    return READER_NAME if entry == 0 else f"{READER_NAME} {entry}"


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state in this network namespace (from /proc/net/tcp{,6})."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "0A":
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def new_private_pcscd(readers: int, *, workdir: Path | None = None,
                      socket_link: Path | None = None) -> PrivatePcscd:
    """A (not yet started) private pcscd with ``readers`` vpcd readers on free ports."""
    if readers < 1:
        raise HarnessError(f"need at least one reader, got {readers}")
    base = free_port_block(readers + readers % 2)
    directory = workdir or Path(tempfile.mkdtemp(prefix="cardsvc-pcscd-"))
    link = socket_link or directory / "pcscd.comm"
    return PrivatePcscd(readers, base, directory, link)
