"""A deadline for blocking calls made on the caller's own thread, at no cost on the fast path.

pcsc-lite's ``SCardTransmit`` has no timeout. Rather than handing every call to a worker thread
(two thread wake-ups per APDU), the caller makes the call itself inside :meth:`Watch.guard`,
which only writes the deadline into the watch. One daemon thread per process (the
:class:`Watchdog`) sleeps until the earliest deadline that could be due — while nothing is in
flight it sleeps a whole timeout, since no call armed later can be due sooner — and when a call
overruns it runs the watch's ``trip`` callback, which must make the blocked call return (the PC/SC
transport shuts down the context's socket). Arming and disarming never wake the watchdog.

``trip`` runs under the watch's lock: once :meth:`Watch.guard` has left its block, ``trip`` can no
longer run for that call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_log = logging.getLogger(__name__)


class Watch:
    """The deadline of one caller's blocking calls (one call at a time)."""

    def __init__(self, owner: Watchdog, timeout_s: float, trip: Callable[[], None]) -> None:
        self.timeout_s = timeout_s
        self.tripped = False
        self._owner = owner
        self._trip = trip
        self._deadline: float | None = None
        self._lock = threading.Lock()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block with a deadline ``timeout_s`` from now; check :attr:`tripped` after it."""
        self._deadline = time.monotonic() + self.timeout_s
        try:
            yield
        finally:
            with self._lock:
                self._deadline = None

    def next_check(self, now: float) -> float:
        """When this watch can next be overdue (a call armed after ``now`` is due no sooner)."""
        deadline = self._deadline
        return now + self.timeout_s if deadline is None or self.tripped else deadline

    def check(self, now: float) -> None:
        """Trip the call in flight if it is overdue (watchdog thread)."""
        with self._lock:
            deadline = self._deadline
            if deadline is None or now < deadline or self.tripped:
                return
            self.tripped = True
            try:
                self._trip()
            except Exception:
                _log.exception("watchdog: trip callback failed")

    def close(self) -> None:
        self._owner.forget(self)


class Watchdog:
    """One daemon thread checking every open :class:`Watch`; started on first use (and after fork)."""

    def __init__(self, name: str = "transport-watchdog") -> None:
        self._name = name
        self._watches: set[Watch] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, timeout_s: float, trip: Callable[[], None]) -> Watch:
        """A new watch; ``trip()`` runs when a guarded call outlives ``timeout_s``."""
        watch = Watch(self, timeout_s, trip)
        with self._changed:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._changed.notify()
        return watch

    def forget(self, watch: Watch) -> None:
        with self._changed:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            with self._changed:
                wait_s = self._sweep(time.monotonic())
                self._changed.wait(wait_s)

    def _sweep(self, now: float) -> float | None:
        """Trip overdue calls; seconds until the next check (``None``: nothing to watch)."""
        for watch in list(self._watches):
            watch.check(now)
        if not self._watches:
            return None
        return max(0.0, min(watch.next_check(now) for watch in self._watches) - now)
