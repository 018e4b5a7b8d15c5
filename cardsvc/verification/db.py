"""Running workflow transactions from async handlers: one thread hop, commit, bounded retries.

Workflows are plain functions ``fn(session) -> T`` that call repo functions and never commit;
:meth:`Database.transact` commits them, and retries (a few times, with a short back-off) when the
database reports a transient conflict — SQLite ``database is locked`` under a concurrent writer,
PostgreSQL serialization failures and deadlocks. On SQLite writers queue on a thread lock and a
``flock`` next to the database file, so neither threads nor worker processes poll for the write lock.

:meth:`Database.run_batched` is group commit for the verification hot path: every queued function
runs in ONE transaction (one lock hand-over, one fsync) and each caller is answered after the
commit, so an OK is only returned once its counter move and audit row are durable. PostgreSQL: one
writer thread per process (:class:`BatchWriter`). SQLite: the batch runs in the event loop's thread
(:class:`LoopBatcher`) — what was checked while the write lock was awaited — and
:meth:`Database.run_checked` runs the read-only checks before the write lock. Contract: a batched
function may raise (a typed 4xx) only *before* its first write — then it has changed nothing and
the rest of the batch goes on; any other failure fails the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from cardsvc.errors import AuthenticationRequired, CardsvcError
from cardsvc.logging import get_logger
from cardsvc.registry import verification_repo as repo
from cardsvc.verification.prepared import PreparedRead

log = get_logger(__name__)
T = TypeVar("T")
P = TypeVar("P")

ATTEMPTS = 5
# session.info key: functions run (in order) just before the transaction commits — a workflow's
# deferred writes, e.g. its audit rows appended in one statement per transaction (store.record_event).
BEFORE_COMMIT = "cardsvc.before_commit"
# session.info key, set in a group-committed transaction: its functions only verify (no reads of
# what another function deferred), so workflows may defer their audit rows to the commit.
BATCHED = "cardsvc.batched"
MAX_BATCH = 128
_TRANSIENT_PG = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def _transient(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower():
        return True
    return getattr(exc.orig, "sqlstate", None) in _TRANSIENT_PG


def _writer_lock_path(engine: Engine) -> Path | None:
    """``<database>.writers`` next to a SQLite file (``None`` for an in-memory database)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).with_name(Path(database).name + ".writers")


@contextlib.contextmanager
def _flocked(path: Path | None) -> Iterator[None]:
    """An exclusive ``flock`` that every worker process's writers queue on.

    SQLite's own busy handler polls with growing sleeps (1, 2, 5 … 100 ms), so two processes
    fighting for the write lock waste time and stretch p99; a kernel lock wakes the next writer
    as soon as the last one commits.
    """
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


async def _acquire(try_now: Callable[[], bool], wait: Callable[[], object], undo: Callable[[], None]) -> None:
    """Take a lock: at once when free, else by a thread that blocks on it (the loop goes on). When the
    waiting task is cancelled, the thread still gets the lock later: it is then given back."""
    if try_now():
        return
    waiter = asyncio.ensure_future(asyncio.to_thread(wait))
    try:
        await asyncio.shield(waiter)
    except asyncio.CancelledError:
        waiter.add_done_callback(lambda f: undo() if not f.cancelled() and f.exception() is None else None)
        raise


class Database:
    """An engine plus sessions that keep loaded objects after commit."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._lock = threading.Lock()
        self._file_lock = _writer_lock_path(engine) if self.is_sqlite else None
        self._batches: BatchWriter | LoopBatcher = LoopBatcher(self) if self.is_sqlite else BatchWriter(self)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def _serialised(self) -> Iterator[None]:
        if not self.is_sqlite:
            yield
            return
        with self._lock, _flocked(self._file_lock):
            yield

    def transact(self, fn: Callable[[Session], T], *, locked: bool = False) -> T:
        """Run ``fn`` in one transaction and commit; retried on transient conflicts only.

        ``locked``: the caller already holds the write lock (:meth:`write_lock`)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with contextlib.nullcontext() if locked else self._serialised(), self.session() as session:
                    result = fn(session)
                    for hook in session.info.pop(BEFORE_COMMIT, ()):
                        hook(session)
                    session.commit()
                    return result
            except DBAPIError as exc:
                if not _transient(exc) or attempt == ATTEMPTS:
                    raise
                log.info("transient database conflict, attempt %d", attempt)
                time.sleep(0.005 * attempt)
        raise RuntimeError("unreachable")  # pragma: no cover - the loop returns or raises

    @contextlib.asynccontextmanager
    async def write_lock(self) -> AsyncIterator[None]:
        """:meth:`_serialised` for the event loop: the same two locks, but a contended one is waited
        for in a thread, so the loop goes on serving (and checking) requests meanwhile."""
        if not self.is_sqlite:
            yield
            return
        await _acquire(lambda: self._lock.acquire(blocking=False), self._lock.acquire, self._lock.release)
        try:
            if self._file_lock is None:
                yield
                return
            fd = os.open(self._file_lock, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                await _acquire(functools.partial(_try_flock, fd),
                               functools.partial(fcntl.flock, fd, fcntl.LOCK_EX), lambda: None)
                yield
            finally:
                os.close(fd)  # closing drops the lock
        finally:
            self._lock.release()

    async def run(self, fn: Callable[[Session], T]) -> T:
        """:meth:`transact` in a worker thread (the event loop never blocks on the database)."""
        return await asyncio.to_thread(self.transact, fn)

    def read(self, fn: Callable[[Session], T]) -> T:
        """A read-only function: no write lock, no commit (WAL readers never wait for the writer)."""
        with self.session() as session:
            return fn(session)

    async def run_read(self, fn: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(self.read, fn)

    async def run_batched(self, fn: Callable[[Session], T], *, client_id: str | None = None) -> T:
        """Like :meth:`run`, but committed together with other callers' functions (group commit).

        With ``client_id``, the batch first confirms (one query for all its jobs) that the client
        exists and is not revoked, else this job raises ``AuthenticationRequired`` and runs nothing.
        """
        return await self._batches.submit(fn, client_id)

    async def run_checked(self, check: Callable[[Session], P], write: Callable[[Session, P], T], *,
                          client_id: str | None = None) -> T:
        """:meth:`run_batched` in two phases: ``check(session)`` only reads; ``write(session, checked)``
        runs in the batch's transaction. On SQLite the checks of a batch run in one shared read
        session *before* the write lock is taken, so workers do their CPU work in parallel and only
        queue for the writes; elsewhere both run in the transaction."""
        if isinstance(self._batches, LoopBatcher):
            return await self._batches.submit(functools.partial(_write_checked, write), client_id, check)
        return await self._batches.submit(lambda s: write(s, check(s)), client_id)

    def close(self) -> None:
        """Stop the batch writer (the engine stays usable)."""
        self._batches.close()

    def ping(self) -> None:
        """Readiness probe: one round trip."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")


Answer = tuple[asyncio.Future[Any], bool, Any]  # a caller's future, ok?, its value or exception


@dataclass(frozen=True, slots=True)
class _Job:
    fn: Callable[..., Any]  # fn(session), or fn(session, checked=...) after a check
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    client_id: str | None = None
    check: Callable[[Session], Any] | None = None  # LoopBatcher: read phase; fn then gets checked=


def _write_checked(write: Callable[[Session, Any], T], session: Session, *, checked: Any) -> T:
    return write(session, checked)


def _call(fn: Callable[[Session], Any], session: Session) -> tuple[bool, Any]:
    try:
        return True, fn(session)
    except CardsvcError as exc:  # raised before the function's first write (the contract)
        return False, exc


_LIVE_CLIENT = PreparedRead(repo.LIVE_CLIENT)


def _live_clients(session: Session, batch: list[_Job]) -> set[str]:
    """The batch's clients that exist and are not revoked (one prepared lookup per distinct client:
    a batch has few, and an ``IN`` list is compiled anew at every execution)."""
    wanted = {job.client_id for job in batch if job.client_id is not None}
    return {client_id for client_id in wanted if _LIVE_CLIENT.first(session, client_id=client_id) is not None}


def _revoked() -> AuthenticationRequired:
    return AuthenticationRequired("invalid or revoked token")


def _run_jobs(batch: list[_Job], session: Session) -> list[tuple[bool, Any]]:
    session.info[BATCHED] = True
    live = _live_clients(session, batch)
    return [_call(job.fn, session) if job.client_id is None or job.client_id in live
            else (False, _revoked()) for job in batch]


def _commit_batch(db: Database, batch: list[_Job], *, locked: bool = False) -> list[tuple[bool, Any]]:
    try:
        return db.transact(functools.partial(_run_jobs, batch), locked=locked)
    except Exception as exc:  # the whole batch failed: every caller gets the error
        log.warning("batch of %d failed: %s", len(batch), type(exc).__name__)
        return [(False, exc)] * len(batch)


def _answers(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> list[Answer]:
    return [(job.future, ok, value) for job, (ok, value) in zip(batch, outcomes, strict=True)]


def _settle_all(answers: list[Answer]) -> None:
    for future, ok, value in answers:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class BatchWriter:
    """One writer thread per process: drains the queue, runs the functions in one transaction."""

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    async def submit(self, fn: Callable[[Session], T], client_id: str | None = None) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ensure_thread()
        self._queue.put(_Job(fn, future, loop, client_id))
        return await future

    def _ensure_thread(self) -> None:
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="cardsvc-batch-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            while len(batch) < self._max:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._run(batch)
                    return
                batch.append(job)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        outcomes = _commit_batch(self._db, batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[Answer]] = {}
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, answers in by_loop.items():  # one wake-up per loop, not per job (each costs a GIL hand-off)
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone
                loop.call_soon_threadsafe(_settle_all, answers)

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)


class LoopBatcher:
    """SQLite: the batches run in the event loop's own thread, no writer thread.

    The checks of every job submitted during one turn of the loop run together (the flush is
    scheduled with ``call_soon`` behind them), outside the write lock. Their writes queue for one
    drain task per loop, which takes the write lock (:meth:`Database.write_lock`: a contended lock is
    awaited in a thread, so the loop goes on checking new requests meanwhile) and then commits every
    queued job in one transaction in the loop's thread — which blocks the loop only for the writes
    and one local fsync. Running the transactions themselves in a writer thread was slower: the
    two threads took turns on the GIL for every statement (measured).
    """

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max = max_batch
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._writers: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._draining: set[asyncio.AbstractEventLoop] = set()

    async def submit(self, fn: Callable[..., T], client_id: str | None = None,
                     check: Callable[[Session], Any] | None = None) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        pending = self._pending.setdefault(loop, [])
        if not pending:
            loop.call_soon(self._flush, loop)
        pending.append(_Job(fn, future, loop, client_id, check))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        pending = self._pending.pop(loop, [])
        batch, rest = pending[: self._max], pending[self._max :]
        if rest:
            self._pending[loop] = rest
            loop.call_soon(self._flush, loop)
        settled, writers = self._checked(batch)
        _settle_all(settled)
        if writers:
            self._writers.setdefault(loop, []).extend(writers)
            if loop not in self._draining:
                self._draining.add(loop)
                loop.create_task(self._drain(loop))

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the checked jobs, a batch at a time. The batch is taken once the write lock is
        held, so the jobs checked while it was awaited join it."""
        try:
            while self._writers.get(loop):
                batch: list[_Job] = []
                try:
                    async with self._db.write_lock():
                        batch = self._take(loop)
                        outcomes = _commit_batch(self._db, batch, locked=True)
                except Exception as exc:  # the lock itself failed: these jobs get the error
                    batch = batch or self._take(loop)
                    log.warning("write lock for a batch of %d failed: %s", len(batch), type(exc).__name__)
                    outcomes = [(False, exc)] * len(batch)
                _settle_all(_answers(batch, outcomes))
        finally:
            self._draining.discard(loop)

    def _take(self, loop: asyncio.AbstractEventLoop) -> list[_Job]:
        queued = self._writers.pop(loop, [])
        if len(queued) > self._max:
            self._writers[loop] = queued[self._max :]
        return queued[: self._max]

    def _checked(self, batch: list[_Job]) -> tuple[list[Answer], list[_Job]]:
        """The read phase: every job's check in one session, outside the write lock. The clients are
        confirmed first (a revoked token gets 401, never a check's 404 / 422); a check that raises
        answers at once; the others' write functions get their checked value (the write phase
        confirms the clients again, in its transaction)."""
        if all(job.check is None for job in batch):
            return [], batch
        try:
            with self._db.session() as session:
                return _check_jobs(session, batch)
        except Exception as exc:  # the read session failed: every caller gets the error
            log.warning("checks of a batch of %d failed: %s", len(batch), type(exc).__name__)
            return [(job.future, False, exc) for job in batch], []

    def close(self) -> None:
        return None


def _check_jobs(session: Session, batch: list[_Job]) -> tuple[list[Answer], list[_Job]]:
    live = _live_clients(session, batch)
    refused: list[Answer] = []
    writers: list[_Job] = []
    for job in batch:
        if job.client_id is not None and job.client_id not in live:
            refused.append((job.future, False, _revoked()))
            continue
        ok, value = (True, None) if job.check is None else _call(job.check, session)
        if not ok:
            refused.append((job.future, False, value))
        elif job.check is None:
            writers.append(job)
        else:
            fn = functools.partial(job.fn, checked=value)
            writers.append(_Job(fn, job.future, job.loop, job.client_id))
    return refused, writers
