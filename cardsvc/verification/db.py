"""Running workflow transactions from async handlers: one thread hop, commit, bounded retries.

Workflows are plain functions ``fn(session) -> T`` that call repo functions and never commit;
:meth:`Database.transact` commits them, and retries (a few times, with a short back-off) when the
database reports a transient conflict — SQLite ``database is locked`` under a concurrent writer,
PostgreSQL serialization failures and deadlocks. On SQLite one process also queues its own writers
on a lock, so threads of one worker never fight for the file lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from cardsvc.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

ATTEMPTS = 5
_TRANSIENT_PG = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def _transient(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower():
        return True
    return getattr(exc.orig, "sqlstate", None) in _TRANSIENT_PG


class Database:
    """An engine plus sessions that keep loaded objects after commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._lock = threading.Lock()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def _serialised(self) -> Iterator[None]:
        if not self.is_sqlite:
            yield
            return
        with self._lock:
            yield

    def transact(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction and commit; retried on transient conflicts only."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._serialised(), self.session() as session:
                    result = fn(session)
                    session.commit()
                    return result
            except DBAPIError as exc:
                if not _transient(exc) or attempt == ATTEMPTS:
                    raise
                log.info("transient database conflict, attempt %d", attempt)
                time.sleep(0.005 * attempt)
        raise RuntimeError("unreachable")  # pragma: no cover - the loop returns or raises

    async def run(self, fn: Callable[[Session], T]) -> T:
        """:meth:`transact` in a worker thread (the event loop never blocks on the database)."""
        return await asyncio.to_thread(self.transact, fn)

    def ping(self) -> None:
        """Readiness probe: one round trip."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
