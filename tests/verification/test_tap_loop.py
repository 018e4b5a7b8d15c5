"""`cardsvc tap` in loop mode survives what a service-point PC meets all day (review finding: an idle
reader, a card pulled early, a 429, a 5xx or a refused connection ended the program).

The terminal runs its real loop over a scripted reader (emulated cards personalised by the real
drivers) and the real :class:`HttpTapServer` over an httpx ``MockTransport`` that injects network
faults and otherwise forwards to the real DB-backed app. ``sleep`` is recorded, not slept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cardsvc.cli.main import exit_code_for
from cardsvc.cli.tap import Backoff, HttpTapServer, Terminal
from cardsvc.config import Settings, get_settings
from cardsvc.emulator.base import VirtualCard
from cardsvc.errors import (
    CardRemoved,
    CardsvcError,
    NoCard,
    NotFound,
    RateLimited,
    ReaderUnavailable,
    ServerUnavailable,
)
from cardsvc.registry import card_repo
from cardsvc.transport.base import CardConnection
from cardsvc.transport.fake import ScriptedConnection
from cardsvc.verification.roles import Role
from tests.api.conftest import Api
from tests.api.verify_support import make_db_api
from tests.support.cards import DirectConnection
from tests.support.postgres import free_port
from tests.verification.test_tap_terminal import personalised
from tests.verification.world import NTAG, IssuedCard, World, make_world, sqlite_url

Step = VirtualCard | CardConnection | Exception
Fault = Callable[[httpx.Request], httpx.Response]


class ScriptedReader:
    """A reader whose ``wait_for_card`` plays ``steps`` (a card on the reader, or an error); when the
    script is done it stops the terminal (like Ctrl-C) and reports an idle reader."""

    name = "Scripted Reader 00"

    def __init__(self, steps: list[Step]) -> None:
        self.steps = list(steps)
        self.current: CardConnection | None = None
        self.terminal: Terminal | None = None
        self.waits = 0
        self.removals = 0

    def wait_for_card(self, timeout_s: float) -> None:
        assert timeout_s > 0
        self.waits += 1
        if not self.steps:
            assert self.terminal is not None
            self.terminal.stop.set()
            raise NoCard(f"{self.name}: no card within {timeout_s:g} s")
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        self.current = DirectConnection(step) if isinstance(step, VirtualCard) else step

    def connect(self) -> CardConnection:
        assert self.current is not None
        return self.current

    def wait_for_removal(self, timeout_s: float) -> None:
        self.removals += 1


class Network:
    """The MockTransport handler: queued faults first, then the real app answers."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.faults: list[Fault] = []
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.faults:
            return self.faults.pop(0)(request)
        headers = {"Authorization": request.headers["Authorization"], "Content-Type": "application/json"}
        answer = self.api.request(request.method, request.url.path, headers=headers, content=request.content)
        kept = {k: v for k, v in answer.headers.items() if k in ("content-type", "retry-after")}
        return httpx.Response(answer.status_code, headers=kept, content=answer.content)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def answer(status: int, *, retry_after: str | None = None) -> Fault:
    def respond(_request: httpx.Request) -> httpx.Response:
        headers = {"Retry-After": retry_after} if retry_after else {}
        problem = {"type": "about:blank", "status": status, "detail": "injected"}
        return httpx.Response(status, headers=headers, json=problem)

    return respond


def squash(text: str) -> str:
    """The console wraps long lines at its width (anywhere, for Chinese): compare without whitespace."""
    return "".join(text.split())


def shown(err: str, message: str) -> bool:
    return squash(message) in squash(err)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(sqlite_url(tmp_path)) as made:
        yield made


@pytest.fixture
def network(world: World) -> Iterator[Network]:
    settings: Settings = get_settings(env="test")
    with make_db_api(settings, world) as api:
        yield Network(api)


@pytest.fixture
def card(world: World) -> tuple[VirtualCard, IssuedCard]:
    return personalised(world, NTAG)


class Run:
    def __init__(self, world: World, network: Network, steps: list[Step]) -> None:
        self.sleeps: list[float] = []
        self.reader = ScriptedReader(steps)
        token = network.api.token(Role.service_point)
        self.server = HttpTapServer("http://cardsvc.test", token, transport=httpx.MockTransport(network))
        self.terminal = Terminal(self.reader, world.profiles, self.server, wait=30.0, as_json=True,
                                 sleep=self.sleeps.append)
        self.reader.terminal = self.terminal

    def __call__(self) -> None:
        try:
            self.terminal.run()
        finally:
            self.server.close()


def outcomes(out: str) -> list[tuple[str, str | None]]:
    decoder, results, index = json.JSONDecoder(), [], 0
    while (start := out.find("{", index)) >= 0:
        value, index = decoder.raw_decode(out, start)
        results.append((value["outcome"], value.get("card_number")))
    return results


def test_an_idle_reader_keeps_waiting(world: World, network: Network, card: tuple[VirtualCard, IssuedCard],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    chip, issued = card
    idle = [NoCard("no card within 30 s") for _ in range(5)]
    run = Run(world, network, [*idle, chip, *idle, chip])
    run()
    out, err = capsys.readouterr()
    assert outcomes(out) == [("OK", issued.card_number)] * 2
    assert run.reader.waits == 13 and run.reader.removals == 2 and run.sleeps == []
    # the prompt once at the start and after each card, not per idle wait
    assert squash(err).count(squash("waiting for a card")) == 3
    assert "Traceback" not in err


def test_card_errors_are_shown_and_the_next_card_verifies(
        world: World, network: Network, card: tuple[VirtualCard, IssuedCard],
        capsys: pytest.CaptureFixture[str]) -> None:
    chip, issued = card
    pulled = ScriptedConnection([], atr=DirectConnection(chip).atr, remove_at=0)
    stranger = ScriptedConnection([], atr=bytes.fromhex("3B00"))
    unbound, unbound_issued = personalised(world, NTAG)
    unbind(world, unbound_issued)
    run = Run(world, network, [pulled, stranger, unbound, chip])
    run()
    out, err = capsys.readouterr()
    assert outcomes(out) == [("OK", issued.card_number)]
    assert shown(err, "卡片移开过早，请重新刷卡 / card removed too early, tap again")
    # the error codes print as text (not swallowed as rich markup)
    assert shown(err, "[card_removed]") and shown(err, "[unknown_card]") and shown(err, "[not_found]")
    assert shown(err, "不支持的卡片 / unsupported card")
    assert shown(err, "服务器拒绝了此卡 / the server refused this card") and "unknown_card" not in out
    assert run.reader.removals == 4 and run.sleeps == []
    assert "Traceback" not in err


def unbind(world: World, issued: IssuedCard) -> None:
    """The chip stays personalised but its card row now names another chip: the server answers 404."""
    with world.session() as session:
        row = card_repo.get_card(session, card_number=issued.card_number)
        row.uid_hash = os.urandom(32)
        session.add(row)
        session.commit()


def test_server_trouble_pauses_then_the_waiting_card_verifies(
        world: World, network: Network, card: tuple[VirtualCard, IssuedCard],
        capsys: pytest.CaptureFixture[str]) -> None:
    chip, issued = card
    network.faults = [refused, refused, answer(503), answer(500), answer(429, retry_after="7")]
    run = Run(world, network, [chip] * 6)  # the card stays on the reader meanwhile
    run()
    out, err = capsys.readouterr()
    assert run.sleeps == [1.0, 2.0, 4.0, 8.0, 7]
    assert outcomes(out) == [("OK", issued.card_number)]
    assert run.reader.removals == 1
    assert squash(err).count(squash("服务器不可用 / server unavailable")) == 4
    assert shown(err, "ConnectError [server_unavailable]")
    assert shown(err, "请求过于频繁 / too many requests，7 秒后重试 / retrying in 7 s")
    assert "Traceback" not in err


def test_backoff_is_bounded_and_resets_after_a_success(
        world: World, network: Network, card: tuple[VirtualCard, IssuedCard],
        capsys: pytest.CaptureFixture[str]) -> None:
    chip, _ = card
    network.faults = [refused] * 8
    steps: list[Step] = [chip] * 9
    run = Run(world, network, steps)
    run()
    assert run.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    network.faults = [refused]
    again = Run(world, network, [chip, chip])
    again.terminal.backoff = run.terminal.backoff  # the same terminal's backoff, after its success
    again()
    assert again.sleeps == [1.0]
    assert len(outcomes(capsys.readouterr().out)) == 2


def test_an_unplugged_reader_is_retried_with_backoff(
        world: World, network: Network, card: tuple[VirtualCard, IssuedCard],
        capsys: pytest.CaptureFixture[str]) -> None:
    chip, issued = card
    gone = [ReaderUnavailable("Scripted Reader 00: reader unavailable") for _ in range(3)]
    run = Run(world, network, [*gone, chip])
    run()
    out, err = capsys.readouterr()
    assert run.sleeps == [1.0, 2.0, 4.0]
    assert outcomes(out) == [("OK", issued.card_number)]
    assert squash(err).count(squash("读卡器不可用 / reader unavailable")) == 3


@pytest.mark.parametrize(("make", "fault", "error", "code"), [
    (lambda _chip: NoCard("no card within 30 s"), None, NoCard, 5),
    (lambda chip: ScriptedConnection([], atr=DirectConnection(chip).atr, remove_at=0), None, CardRemoved, 5),
    (lambda chip: chip, refused, ServerUnavailable, 12),
    (lambda chip: chip, answer(502), ServerUnavailable, 12),
    (lambda chip: chip, answer(429, retry_after="3"), RateLimited, 11),
    (lambda chip: chip, answer(404), NotFound, 9),
], ids=["idle", "pulled", "refused", "502", "429", "404"])
def test_once_propagates_with_the_right_exit_code(
        world: World, network: Network, card: tuple[VirtualCard, IssuedCard],
        make: Callable[[VirtualCard], Step], fault: Fault | None, error: type[CardsvcError],
        code: int) -> None:
    chip, _ = card
    network.faults = [fault] if fault else []
    run = Run(world, network, [make(chip)])
    with pytest.raises(error) as caught:
        run.terminal.once()
    assert exit_code_for(caught.value) == code
    assert run.sleeps == []
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 3


def test_a_refused_connection_to_a_real_port_is_server_unavailable() -> None:
    server = HttpTapServer(f"http://127.0.0.1:{free_port()}", "token", timeout=2.0)
    try:
        with pytest.raises(ServerUnavailable, match="ConnectError") as caught:
            server.post("/v1/challenges", None)
    finally:
        server.close()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_backoff_doubles_to_its_limit() -> None:
    backoff = Backoff(first=0.5, limit=3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5
