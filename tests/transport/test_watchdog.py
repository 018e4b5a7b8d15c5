"""Watchdog: overrunning guarded calls are tripped, finished ones never; the client socket trip."""

from __future__ import annotations

import socket
import threading
import time

from cardsvc.transport import clientsocket
from cardsvc.transport.watchdog import Watchdog


def test_overrunning_call_is_tripped_once() -> None:
    tripped = threading.Event()
    watch = Watchdog("test-watchdog").watch(0.05, tripped.set)
    started = time.monotonic()
    with watch.guard():
        assert tripped.wait(2.0)
    assert watch.tripped
    assert 0.05 <= time.monotonic() - started < 1.0
    watch.close()


def test_calls_within_the_deadline_are_never_tripped() -> None:
    trips: list[float] = []
    watch = Watchdog("test-watchdog").watch(0.05, lambda: trips.append(time.monotonic()))
    for _ in range(200):
        with watch.guard():
            pass
    time.sleep(0.15)  # well past every deadline: disarmed calls cannot trip afterwards
    assert trips == []
    assert not watch.tripped
    watch.close()


def test_each_watch_has_its_own_deadline() -> None:
    dog = Watchdog("test-watchdog")
    slow_tripped, fast_tripped = threading.Event(), threading.Event()
    slow = dog.watch(5.0, slow_tripped.set)
    fast = dog.watch(0.05, fast_tripped.set)
    with slow.guard(), fast.guard():
        assert fast_tripped.wait(2.0)
    assert not slow_tripped.is_set()
    slow.close()
    fast.close()


def test_idle_watch_sleeps_a_whole_timeout() -> None:
    watch = Watchdog("test-watchdog").watch(3.0, lambda: None)
    assert watch.next_check(100.0) == 103.0  # nothing in flight: nothing can be due sooner
    with watch.guard():
        assert watch.next_check(time.monotonic()) <= time.monotonic() + 3.0
    watch.close()


def test_shutting_the_socket_down_wakes_a_blocked_reader() -> None:
    before = clientsocket.socket_fds()
    ours, theirs = socket.socketpair()
    new = clientsocket.socket_fds() - before
    assert {fd for fd, _ in new} == {ours.fileno(), theirs.fileno()}
    assert clientsocket.only_unix_stream(frozenset(e for e in new if e[0] == ours.fileno())) \
        == ours.fileno()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(ours.recv(10)))
    reader.start()
    time.sleep(0.05)
    clientsocket.shut_down(ours.fileno())
    reader.join(2.0)
    assert not reader.is_alive()
    assert got == [b""]  # end of stream, as pcsc-lite's client sees it
    assert ours.fileno() >= 0  # the descriptor stays open until its owner closes it
    ours.close()
    theirs.close()


def test_two_new_unix_sockets_are_ambiguous() -> None:
    first, second = socket.socketpair()
    pair = frozenset({(first.fileno(), "socket:[1]"), (second.fileno(), "socket:[2]")})
    assert clientsocket.only_unix_stream(pair) is None
    assert clientsocket.only_unix_stream(frozenset()) is None
    first.close()
    second.close()


def test_a_reused_descriptor_number_counts_as_new() -> None:
    before = clientsocket.socket_fds()
    first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    number, seen = first.fileno(), clientsocket.socket_fds()
    first.close()
    second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # most likely the same number
    new = clientsocket.socket_fds() - seen
    if second.fileno() == number:
        assert {fd for fd, _ in new} == {number}  # same number, another inode: still new
    assert clientsocket.only_unix_stream(clientsocket.socket_fds() - before) == second.fileno()
    second.close()
