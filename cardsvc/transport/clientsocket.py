"""Find and unblock the socket behind a pcsc-lite client context (Linux ``/proc``).

pcsc-lite's client library opens one UNIX stream socket to pcscd per ``SCardEstablishContext``
and waits for every answer on it with ``poll()`` and no timeout (``SCardCancel`` only interrupts
``SCardGetStatusChange``; ``SCardDisconnect`` from another thread waits for the context's lock).
Shutting the socket down makes the blocked call return ``SCARD_F_COMM_ERROR`` at once; the
context is dead afterwards. :func:`socket_fds` before and after establishing a context tells which
descriptor is the context's (descriptor *and* socket inode, so a number another thread closed and
reused in between is not mistaken for it); when that is not exactly one UNIX stream socket the
caller must not guess (it falls back to a worker thread).
"""

from __future__ import annotations

import logging
import os
import socket

_log = logging.getLogger(__name__)
_FD_DIR = "/proc/self/fd"


def socket_fds() -> frozenset[tuple[int, str]]:
    """The process's open sockets as (descriptor, ``socket:[inode]``) (empty without ``/proc``)."""
    try:
        names = os.listdir(_FD_DIR)
    except OSError:
        return frozenset()
    found = set()
    for name in names:
        try:
            target = os.readlink(f"{_FD_DIR}/{name}")
            if target.startswith("socket:"):
                found.add((int(name), target))
        except (OSError, ValueError):
            continue
    return frozenset(found)


def only_unix_stream(sockets: frozenset[tuple[int, str]]) -> int | None:
    """The descriptor of the single UNIX stream socket among ``sockets``, else ``None``."""
    found = [fd for fd, _inode in sockets if _is_unix_stream(fd)]
    return found[0] if len(found) == 1 else None


def _is_unix_stream(fd: int) -> bool:
    try:
        probe = socket.socket(fileno=fd)  # borrows the descriptor: detached below, never closed
    except OSError:
        return False
    try:
        return probe.family == socket.AF_UNIX and probe.type == socket.SOCK_STREAM
    finally:
        probe.detach()


def shut_down(fd: int) -> None:
    """``shutdown(fd, SHUT_RDWR)``: wakes a thread blocked reading it; the descriptor stays open."""
    try:
        probe = socket.socket(fileno=fd)
    except OSError as exc:
        _log.warning("client socket %d already gone: %s", fd, exc)
        return
    try:
        probe.shutdown(socket.SHUT_RDWR)
    except OSError as exc:
        _log.debug("shutdown of client socket %d: %s", fd, exc)
    finally:
        probe.detach()
