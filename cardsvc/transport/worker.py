"""A dedicated thread for blocking calls that must not hang the caller.

pcsc-lite's ``SCardTransmit`` has no timeout; a connection runs it here and waits at most
``timeout_s``. Jobs run one at a time, in order. After a timed-out :meth:`CallWorker.call` the
worker may still be stuck in that job: use only :meth:`submit` and :meth:`stop` afterwards.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class CallWorker:
    """One daemon thread running submitted callables; exceptions are re-raised in the caller."""

    def __init__(self, name: str) -> None:
        self._requests: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        while (job := self._requests.get()) is not None:
            try:
                self._results.put((True, job()))
            except BaseException as exc:  # handed back to the caller thread, re-raised there
                self._results.put((False, exc))

    def call(self, job: Callable[[], Any], timeout_s: float) -> Any:
        """Run ``job`` on the worker; ``queue.Empty`` if it does not finish within ``timeout_s``."""
        self._requests.put(job)
        ok, value = self._results.get(timeout=timeout_s)
        if not ok:
            raise value
        return value

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue ``job`` without waiting (e.g. a disconnect behind a stuck call)."""
        self._requests.put(job)

    def stop(self) -> None:
        """Let the thread end after the queued jobs."""
        self._requests.put(None)
