"""PC/SC transport: the ONLY module that imports pyscard (``smartcard``).

Every PC/SC failure becomes a typed error from :mod:`cardsvc.errors` (``raise … from exc``):
``CardRemoved`` for a card pulled mid-command, ``ReaderUnavailable`` for a missing reader or
service, ``NoCard`` when nothing is on the reader, ``CardTimeout`` when a wait or a command runs
out of time, ``TransportError`` otherwise.

No call here can hang: status waits use ``SCardGetStatusChange`` with a finite timeout, and
``transmit`` calls ``SCardTransmit`` on the caller's thread under a :mod:`watchdog` deadline of
``timeout_s`` (pcsc-lite has no transmit timeout of its own, and a mute card behind vpcd would
block it forever). An overrun shuts the context's client socket down (:mod:`clientsocket`), which
makes the blocked call return; the connection is then dead: later calls raise ``CardTimeout`` and
``close()`` returns at once. Where the context's socket cannot be told apart (no ``/proc``), the
connection runs its calls on a worker thread instead (:mod:`worker`, ~20 µs more per APDU).
Each connection owns its PC/SC context while open, so a stuck connection never blocks another
one; contexts of cleanly closed connections are pooled (establishing one costs more than an APDU).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from smartcard import scard

from cardsvc.errors import (
    CardRemoved,
    CardTimeout,
    NoCard,
    ReaderUnavailable,
    TransportError,
)
from cardsvc.transport import clientsocket, trace
from cardsvc.transport.base import ReaderInfo
from cardsvc.transport.watchdog import Watch, Watchdog
from cardsvc.transport.worker import CallWorker

_log = logging.getLogger(__name__)

DEFAULT_TRANSMIT_TIMEOUT_S = 5.0
_POLL_SLICE_MS = 500  # each SCardGetStatusChange call is bounded; loops check the deadline

_UNAVAILABLE = {
    scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_F_COMM_ERROR,
    scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_NO_READERS_AVAILABLE,
}
_REMOVED = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD}
_TIMEOUT = {scard.SCARD_E_TIMEOUT, scard.SCARD_W_UNRESPONSIVE_CARD}
_AMBIGUOUS = {scard.SCARD_E_NOT_TRANSACTED & 0xFFFFFFFF, scard.SCARD_F_UNKNOWN_ERROR & 0xFFFFFFFF}
_REMOVAL_GRACE_S = 1.5  # pcscd polls card presence every 400 ms
_STALE = {code & 0xFFFFFFFF for code in (
    scard.SCARD_E_INVALID_HANDLE, scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_F_COMM_ERROR)}
_T = TypeVar("_T")


class PcscFailure(Exception):
    """Internal: a non-success PC/SC return code, converted to a cardsvc error at the edge."""

    def __init__(self, what: str, hresult: int) -> None:
        self.what = what
        self.hresult = hresult & 0xFFFFFFFF
        super().__init__(f"{what}: {describe(hresult)}")


def describe(hresult: int) -> str:
    """``SCARD_E_… (0x8010…)`` text for a return code."""
    code = hresult & 0xFFFFFFFF
    name = next((n for n in dir(scard) if n.startswith(("SCARD_E_", "SCARD_W_", "SCARD_F_"))
                 and getattr(scard, n) & 0xFFFFFFFF == code), "unknown")
    return f"{name} (0x{code:08X})"


def _check(what: str, hresult: int) -> None:
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscFailure(what, hresult)


def to_error(failure: PcscFailure, *, reader: str, connecting: bool = False) -> TransportError:
    """Map one PC/SC return code to the cardsvc error tree (the only place that does it)."""
    code = failure.hresult
    text = f"{reader}: {failure}" if reader else str(failure)
    if code in {c & 0xFFFFFFFF for c in _REMOVED}:
        return NoCard(text) if connecting else CardRemoved(text)
    if code in {c & 0xFFFFFFFF for c in _UNAVAILABLE}:
        return ReaderUnavailable(text)
    if code in {c & 0xFFFFFFFF for c in _TIMEOUT}:
        return CardTimeout(text)
    return TransportError(text)


# --- contexts and reader states ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    """A PC/SC context and its client socket descriptor (``None`` when it could not be told)."""

    handle: Any
    fd: int | None


_establishing = threading.Lock()  # one at a time, so the new socket descriptor is this context's
_watchdog = Watchdog()


def _establish() -> _Context:
    with _establishing:
        before = clientsocket.socket_fds()
        try:
            hresult, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            _check("SCardEstablishContext", hresult)
        except PcscFailure as exc:
            raise to_error(exc, reader="") from exc
        fd = clientsocket.only_unix_stream(clientsocket.socket_fds() - before)
    if fd is None:
        _log.debug("PC/SC context socket not identified: transmits go through a worker thread")
    return _Context(handle, fd)


def _release(context: _Context) -> None:
    hresult = scard.SCardReleaseContext(context.handle)
    if hresult != scard.SCARD_S_SUCCESS:
        _log.debug("SCardReleaseContext: %s", describe(hresult))


class _ContextPool:
    """Idle PC/SC contexts kept for reuse.

    ``SCardEstablishContext`` makes pcscd start a thread for the client (0.2 ms idle, several ms
    under load) — more than a whole APDU. Each context is used by one caller at a time; a context
    whose connection got stuck is never given back.
    """

    def __init__(self, size: int = 4) -> None:
        self._idle: list[_Context] = []
        self._size = size
        self._lock = threading.Lock()

    def take(self) -> tuple[_Context, bool]:
        """A context and whether it came from the pool (it may be stale if pcscd restarted)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return _establish(), False

    def give_back(self, context: _Context) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(context)
                return
        _release(context)


_contexts = _ContextPool()


def _using_context(job: Callable[[Any], _T], *, keep: bool = False) -> tuple[_T, _Context]:
    """Run ``job(context handle)``; a pooled context that turns out stale is dropped and retried.

    With ``keep`` the caller owns the context afterwards (and gives it back); otherwise it returns
    to the pool. A :class:`PcscFailure` from a fresh context propagates.
    """
    while True:
        context, pooled = _contexts.take()
        try:
            result = job(context.handle)
        except PcscFailure as exc:
            _release(context)
            if pooled and exc.hresult in _STALE:
                continue
            raise
        except BaseException:
            _release(context)
            raise
        if not keep:
            _contexts.give_back(context)
        return result, context


def _reader_names(context: Any) -> list[str]:
    hresult, names = scard.SCardListReaders(context, [])
    _check("SCardListReaders", hresult)
    if not names:
        raise PcscFailure("SCardListReaders", scard.SCARD_E_NO_READERS_AVAILABLE)
    return list(names)


def _states(context: Any, names: list[str], timeout_ms: int,
            current: list[int] | None = None) -> list[tuple[str, int, bytes]]:
    known = current or [scard.SCARD_STATE_UNAWARE] * len(names)
    request = [(name, state) for name, state in zip(names, known, strict=True)]
    hresult, states = scard.SCardGetStatusChange(context, timeout_ms, request)
    if hresult == scard.SCARD_E_TIMEOUT:
        return [(name, state, b"") for name, state in request]
    _check("SCardGetStatusChange", hresult)
    return [(name, event, bytes(atr)) for name, event, atr in states]


def _present(event: int) -> bool:
    return bool(event & scard.SCARD_STATE_PRESENT) and not event & scard.SCARD_STATE_MUTE


def list_readers() -> list[ReaderInfo]:
    """Every reader with the ATR of the card in it (``None`` when empty or mute).

    Raises :class:`ReaderUnavailable` when the PC/SC service is not running or has no readers.
    """
    def job(context: Any) -> list[tuple[str, int, bytes]]:
        return _states(context, _reader_names(context), 0)

    try:
        states, _ = _using_context(job)
    except PcscFailure as exc:
        raise to_error(exc, reader="") from exc
    return [ReaderInfo(name, atr if _present(event) else None) for name, event, atr in states]


def wait_for_card(reader: str, timeout_s: float) -> bytes:
    """Block until a card is on ``reader`` (its ATR); :class:`NoCard` after ``timeout_s``."""
    event, atr = _wait_state(reader, timeout_s, _present)
    del event
    if not atr:
        raise NoCard(f"{reader}: no card within {timeout_s:g} s")
    return atr


def wait_for_removal(reader: str, timeout_s: float) -> None:
    """Block until ``reader`` is empty; :class:`CardTimeout` after ``timeout_s``."""
    event, _ = _wait_state(reader, timeout_s, lambda e: bool(e & scard.SCARD_STATE_EMPTY))
    if not event & scard.SCARD_STATE_EMPTY:
        raise CardTimeout(f"{reader}: card still present after {timeout_s:g} s")


def _wait_state(reader: str, timeout_s: float, done: Callable[[int], bool]) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout_s
    try:
        result, _ = _using_context(lambda context: _poll_until(context, reader, deadline, done))
    except PcscFailure as exc:
        raise to_error(exc, reader=reader) from exc
    return result


def _poll_until(context: Any, reader: str, deadline: float,
                done: Callable[[int], bool]) -> tuple[int, bytes]:
    known, timeout_ms = scard.SCARD_STATE_UNAWARE, 0
    while True:
        ((_, event, atr),) = _states(context, [reader], timeout_ms, [known])
        if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            raise PcscFailure("SCardGetStatusChange", scard.SCARD_E_UNKNOWN_READER)
        if done(event):
            return event, atr
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            return event, b""
        known, timeout_ms = event & ~scard.SCARD_STATE_CHANGED, min(remaining_ms, _POLL_SLICE_MS)


# --- connections -------------------------------------------------------------------------------


def connect(reader: str, *, exclusive: bool = False,
            timeout_s: float = DEFAULT_TRANSMIT_TIMEOUT_S) -> PcscConnection:
    """Connect to the card on ``reader`` (T=0 or T=1).

    Raises :class:`ReaderUnavailable` for an unknown reader or a stopped service, :class:`NoCard`
    when the reader is empty.
    """
    share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED

    def job(context: Any) -> tuple[Any, int, bytes]:
        hresult, handle, protocol = scard.SCardConnect(
            context, reader, share, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        _check("SCardConnect", hresult)
        return handle, protocol, _card_atr(handle)

    try:
        (handle, protocol, atr), context = _using_context(job, keep=True)
    except PcscFailure as exc:
        raise to_error(exc, reader=reader, connecting=True) from exc
    return PcscConnection(context, handle, protocol, reader, atr, timeout_s)


def _card_atr(handle: Any) -> bytes:
    hresult, _name, _state, _protocol, atr = scard.SCardStatus(handle)
    if hresult != scard.SCARD_S_SUCCESS:
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        raise PcscFailure("SCardStatus", hresult)
    return bytes(atr)


class PcscConnection:
    """An open PC/SC card handle; implements :class:`~cardsvc.transport.base.CardConnection`."""

    def __init__(self, context: _Context, handle: Any, protocol: int, reader: str, atr: bytes,
                 timeout_s: float) -> None:
        self._context = context
        self._handle = handle
        self._protocol = protocol
        self._reader = reader
        self._atr = atr
        self._timeout_s = timeout_s
        self._guard: Watch | CallWorker = (
            CallWorker(f"pcsc:{reader}") if context.fd is None else _watchdog.watch(timeout_s, self._trip))
        self._dead: TransportError | None = None  # the failure that ended this connection
        self._closed = False

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def reader(self) -> str:
        return self._reader

    @property
    def guarded_by(self) -> str:
        """How calls are bounded: ``"watchdog"`` (caller's thread) or ``"worker thread"``."""
        return "watchdog" if isinstance(self._guard, Watch) else "worker thread"

    def transmit(self, apdu: bytes) -> bytes:
        if self._closed or self._dead:
            raise self._unusable()
        started = time.perf_counter()
        try:
            response = self._call(lambda: self._transmit(apdu))
        except PcscFailure as exc:
            if exc.hresult in _AMBIGUOUS:
                raise self._lost(str(exc)) from exc
            raise to_error(exc, reader=self._reader) from exc
        if len(response) < 2:
            raise self._lost(f"{len(response)}-byte response")
        if trace.enabled():
            trace.trace_exchange(self._reader, apdu, response, time.perf_counter() - started)
        return response

    def _call(self, job: Callable[[], _T]) -> _T:
        """Run a blocking PC/SC call within ``timeout_s``; :class:`CardTimeout` when it overruns."""
        guard = self._guard
        if isinstance(guard, Watch):
            return self._watched(guard, job)
        try:
            result: _T = guard.call(job, self._timeout_s)
        except queue.Empty as exc:
            raise self._timed_out() from exc
        return result

    def _watched(self, watch: Watch, job: Callable[[], _T]) -> _T:
        failure: PcscFailure | None = None
        with watch.guard():
            try:
                result = job()
            except PcscFailure as exc:
                failure = exc
        if watch.tripped:
            raise self._timed_out() from failure
        if failure is not None:
            raise failure
        return result

    def _trip(self) -> None:
        """Watchdog thread: unblock the overdue call by shutting the context's socket down."""
        if self._context.fd is not None:
            clientsocket.shut_down(self._context.fd)

    def _timed_out(self) -> CardTimeout:
        self._dead = CardTimeout(f"{self._reader}: card did not answer within {self._timeout_s:g} s")
        return self._dead

    def _unusable(self) -> TransportError:
        if self._dead is not None:
            return type(self._dead)(f"connection unusable: {self._dead.message}")
        return TransportError(f"{self._reader}: connection closed")

    def _lost(self, what: str) -> TransportError:
        """A failed exchange: :class:`CardRemoved` if the reader reports the card gone soon after.

        vpcd answers an empty response when the card leaves mid-command, and real readers often
        say ``SCARD_E_NOT_TRANSACTED``; pcscd notices the removal at its next presence poll.
        """
        try:
            wait_for_removal(self._reader, _REMOVAL_GRACE_S)
        except TransportError:
            self._dead = TransportError(f"{self._reader}: transmit failed ({what}); card still present")
        else:
            self._dead = CardRemoved(f"{self._reader}: card removed during the command ({what})")
        return self._dead

    def _transmit(self, apdu: bytes) -> bytes:
        hresult, response = scard.SCardTransmit(self._handle, self._protocol, list(apdu))
        _check("SCardTransmit", hresult)
        return bytes(response)

    def close(self) -> None:
        """Disconnect with SCARD_UNPOWER_CARD and release the context (idempotent, never blocks)."""
        if self._closed:
            return
        self._closed = True
        guard = self._guard
        if isinstance(guard, CallWorker):
            self._close_on_worker(guard)
            return
        try:
            self._watched(guard, self._disconnect)
        except CardTimeout:
            _log.warning("%s: disconnect did not finish within %g s", self._reader, self._timeout_s)
        finally:
            guard.close()
            self._return_context()

    def _close_on_worker(self, worker: CallWorker) -> None:
        if self._dead:  # the worker may be stuck in the failed call: queue behind it, never wait
            worker.submit(self._disconnect)
            worker.submit(self._return_context)
            worker.stop()
            return
        try:
            worker.call(self._disconnect, self._timeout_s)
        except queue.Empty:
            _log.warning("%s: disconnect did not finish within %g s", self._reader, self._timeout_s)
            self._dead = CardTimeout(f"{self._reader}: disconnect timed out")
        finally:
            worker.submit(self._return_context)
            worker.stop()

    def _disconnect(self) -> None:
        hresult = scard.SCardDisconnect(self._handle, scard.SCARD_UNPOWER_CARD)
        if hresult != scard.SCARD_S_SUCCESS:
            _log.debug("%s: SCardDisconnect: %s", self._reader, describe(hresult))

    def _return_context(self) -> None:
        """Pool the context after a clean life; release it after a failure (it may be stuck)."""
        if self._dead is None:
            _contexts.give_back(self._context)
        else:
            _release(self._context)

    def __enter__(self) -> PcscConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
