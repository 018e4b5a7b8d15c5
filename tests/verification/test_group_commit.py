"""SQLite group commit (``Database.run_checked`` / ``LoopBatcher``) while another writer holds the lock.

The write lock of a SQLite database is a thread lock plus a ``flock`` on ``<db>.writers`` that every
worker process takes. While another process holds it, the event loop must go on serving (it waits
in a thread), the requests checked meanwhile must join one batch, and every caller must be answered
— with its result after the commit, or with the error when the lock itself fails.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from cardsvc.registry.db import make_engine
from cardsvc.verification import db as db_module
from cardsvc.verification.db import Database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(make_engine(f"sqlite:///{tmp_path / 'group.db'}"))
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE hits (id INTEGER PRIMARY KEY, job INTEGER NOT NULL)"))
    yield database
    database.close()
    database.engine.dispose()


def _check(job: int) -> object:
    return lambda _session: job


def _write(session: Session, job: int) -> int:
    session.connection().execute(text("INSERT INTO hits (job) VALUES (:job)"), {"job": job})
    return job


def _rows(database: Database) -> list[int]:
    with database.engine.connect() as connection:
        return sorted(row[0] for row in connection.execute(text("SELECT job FROM hits")))


class _OtherProcessLock:
    """What another worker process holding the write lock looks like: a separate open of the file."""

    def __init__(self, database: Database) -> None:
        path = db_module._writer_lock_path(database.engine)
        assert path is not None
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        os.close(self.fd)


def test_jobs_checked_while_the_lock_is_held_elsewhere_commit_together(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    real_run_jobs = db_module._run_jobs

    def counting_run_jobs(batch: list[db_module._Job], session: Session) -> list[tuple[bool, object]]:
        batches.append(len(batch))
        return real_run_jobs(batch, session)

    monkeypatch.setattr(db_module, "_run_jobs", counting_run_jobs)
    other = _OtherProcessLock(database)

    async def scenario() -> tuple[list[int], int]:
        first = asyncio.ensure_future(database.run_checked(_check(0), lambda s, job: _write(s, job)))
        ticks = 0
        for _ in range(20):  # the loop is not blocked while the lock is held elsewhere
            await asyncio.sleep(0.005)
            ticks += 1
        later = [asyncio.ensure_future(database.run_checked(_check(job), lambda s, j: _write(s, j)))
                 for job in range(1, 6)]
        await asyncio.sleep(0.02)
        assert not first.done() and not any(job.done() for job in later)
        assert _rows(database) == []  # nothing written while another process holds the lock
        threading.Timer(0.05, other.release).start()
        done = await asyncio.wait_for(asyncio.gather(first, *later), timeout=10)
        return list(done), ticks

    answered, ticks = asyncio.run(scenario())
    assert ticks == 20
    assert answered == [0, 1, 2, 3, 4, 5]
    assert _rows(database) == [0, 1, 2, 3, 4, 5]
    assert batches == [6]  # the five checked while waiting joined the first job's batch


def test_a_failing_write_lock_answers_every_job_with_the_error(database: Database,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_flock(_fd: int) -> bool:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(db_module, "_try_flock", broken_flock)

    async def scenario() -> list[BaseException | int]:
        jobs = [database.run_checked(_check(job), lambda s, j: _write(s, j)) for job in range(3)]
        return await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), timeout=10)

    outcomes = asyncio.run(scenario())
    assert [type(outcome) for outcome in outcomes] == [OSError] * 3
    assert _rows(database) == []


def test_a_cancelled_waiter_gives_the_lock_back(database: Database) -> None:
    """A task cancelled while its thread waits for the lock: the thread's late acquisition is undone."""
    other = _OtherProcessLock(database)

    async def scenario() -> int:
        async def hold() -> None:
            async with database.write_lock():
                await asyncio.sleep(0)

        waiter = asyncio.ensure_future(hold())
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        other.release()
        return await asyncio.wait_for(database.run_checked(_check(7), lambda s, j: _write(s, j)), timeout=10)

    assert asyncio.run(scenario()) == 7
    assert _rows(database) == [7]
