"""CallWorker: results, exceptions and timeouts cross threads correctly."""

from __future__ import annotations

import queue
import threading

import pytest

from cardsvc.errors import CardRemoved
from cardsvc.transport.worker import CallWorker


def test_results_and_exceptions_come_back_in_the_caller() -> None:
    worker = CallWorker("test")
    assert worker.call(lambda: threading.current_thread().name, 1.0) == "test"

    def fail() -> None:
        raise CardRemoved("gone")

    with pytest.raises(CardRemoved, match="gone"):
        worker.call(fail, 1.0)
    worker.stop()


def test_stuck_job_times_out_and_later_jobs_run_after_it() -> None:
    worker = CallWorker("stuck")
    release, done = threading.Event(), threading.Event()
    with pytest.raises(queue.Empty):
        worker.call(lambda: release.wait(5), 0.05)
    worker.submit(done.set)
    worker.stop()
    assert not done.is_set()
    release.set()
    assert done.wait(2)
