"""`cardsvc tap`: the service-point terminal — wait for a card on a reader, prove it to the server.

Per card: ``POST /v1/challenges`` → the card answers (FMCOS: INTERNAL AUTHENTICATE over the first
block of the challenge; NTAG 424 DNA: a fresh SUN read) → ``POST /v1/verify/card`` → show the
outcome and what this client's role may see. The terminal holds no card keys: the server checks
the proof with the diversified keys and the live status, and writes the audit row.

In loop mode (the default) the terminal runs until stopped: an idle reader keeps waiting; a card
error (pulled too early, unknown card) or a refusal from the server is shown in Chinese and English
and the next card is awaited; a 429 waits ``Retry-After`` and an unreachable server or a 5xx waits a
bounded exponential backoff (1 s doubling to 30 s), then a card still on the reader is tried again.
``--once`` verifies one card and turns any problem into the command's error and exit code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
import typer
from rich.markup import escape

from cardsvc.cardcrypto import fmcos as fc
from cardsvc.cli.output import console, emit_json, err_console
from cardsvc.config import get_settings
from cardsvc.drivers.base import driver_for
from cardsvc.errors import (
    AccessError,
    AuthenticationRequired,
    CardError,
    CardRemoved,
    CardsvcError,
    CardTimeout,
    Conflict,
    InvalidRecord,
    NoCard,
    NotFound,
    PermissionDenied,
    RateLimited,
    ReaderUnavailable,
    RegistryError,
    ServerUnavailable,
    TransportError,
    UnknownCard,
)
from cardsvc.profiles import Profile, load_profiles, match_atr
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.transport import pcsc
from cardsvc.transport.base import CardConnection

_STYLE = {"OK": "bold green", "NOK": "bold red", "CHECK": "bold yellow"}
RETRY_AFTER_MAX_S = 300
REMOVAL_WAIT_S = 3600.0


class TapServer(Protocol):
    def post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]: ...


def raise_problem(status: int, problem: dict[str, Any], *, retry_after: str | None = None) -> None:
    """Turn a problem+json answer into the matching cardsvc error (the CLI maps it to an exit code);
    ``retry_after`` is the ``Retry-After`` header, preferred over the body's ``retry_after``."""
    detail, reason = str(problem.get("detail", "")), problem.get("reason")
    if status == 401:
        raise AuthenticationRequired(detail or "the server refused the token")
    if status == 403:
        raise PermissionDenied(detail)
    if status == 404:
        raise NotFound(detail, reason=reason)
    if status == 409:
        raise Conflict(detail, reason=reason)
    if status == 429:
        raise RateLimited(retry_after=_seconds(retry_after, problem.get("retry_after")))
    if status in (413, 415, 422):
        raise InvalidRecord(detail or "request refused", field=str(problem.get("field", "request")))
    if status >= 500:
        raise ServerUnavailable(f"server error {status}: {detail}" if detail else f"server error {status}")
    raise CardsvcError(f"unexpected answer {status}: {detail}")


def _seconds(*candidates: object) -> int:
    """The first candidate that is a whole number of seconds, within 1 … RETRY_AFTER_MAX_S (else 1)."""
    for value in candidates:
        try:
            return max(1, min(int(str(value)), RETRY_AFTER_MAX_S))
        except ValueError:
            continue
    return 1


class HttpTapServer:
    """The verification API over HTTP with a bearer token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                    headers={"Authorization": f"Bearer {token}"})

    def post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = self._client.post(path, json=body)
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            reason = exc.__class__.__name__
            raise ServerUnavailable(f"cannot reach {self._client.base_url}: {reason}") from exc
        if response.status_code >= 400:
            raise_problem(response.status_code, _json(response),
                          retry_after=response.headers.get("Retry-After"))
        data = _json(response)
        if not data:
            raise ServerUnavailable(f"the server's answer to {path} is not a JSON object")
        return data

    def close(self) -> None:
        self._client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def card_answer(conn: CardConnection, profile: Profile, challenge: bytes) -> dict[str, Any]:
    """The card's side of a reader tap, as the body of ``POST /v1/verify/card``."""
    driver = driver_for(profile)
    if isinstance(profile.config, FmcosConfig):
        block = fc.suite(profile.config.cipher_suite).block_size
        proof = driver.prove(conn, challenge[:block])
        return {"challenge": challenge.hex(), "uid": proof.uid.hex(), "kind": "internal_auth",
                "payload": proof.payload.hex()}
    proof = driver.prove(conn, b"")
    return {"challenge": challenge.hex(), "uid": proof.uid.hex(), "kind": "sun",
            "payload": proof.payload.decode("ascii", "replace")}


def tap_once(conn: CardConnection, profiles: dict[str, Profile], server: TapServer) -> dict[str, Any]:
    """One exchange: challenge, card proof, verdict."""
    matches = match_atr(profiles, conn.atr)
    if not matches:
        raise UnknownCard(f"no firmware profile matches ATR {conn.atr.hex().upper()}")
    challenge = bytes.fromhex(str(server.post("/v1/challenges", None)["challenge"]))
    return server.post("/v1/verify/card", card_answer(conn, matches[0], challenge))


def show(result: dict[str, Any]) -> None:
    outcome = str(result.get("outcome"))
    reason = result.get("reason")
    line = f"[{_STYLE.get(outcome, 'bold')}]{outcome}[/] card {result.get('card_number') or '-'}"
    console.print(line + (f"  ({reason})" if reason else ""))
    for key, value in (result.get("member") or {}).items():
        console.print(f"  {key}: {value}", highlight=False)


class CardReader(Protocol):
    """The reader seam of the terminal (PC/SC in production, scripted in tests)."""

    @property
    def name(self) -> str: ...

    def wait_for_card(self, timeout_s: float) -> None: ...

    def connect(self) -> CardConnection: ...

    def wait_for_removal(self, timeout_s: float) -> None: ...


@dataclass(frozen=True, slots=True)
class PcscReader:
    name: str

    def wait_for_card(self, timeout_s: float) -> None:
        pcsc.wait_for_card(self.name, timeout_s)

    def connect(self) -> CardConnection:
        return pcsc.connect(self.name)

    def wait_for_removal(self, timeout_s: float) -> None:
        pcsc.wait_for_removal(self.name, timeout_s)


@dataclass(slots=True)
class Backoff:
    """Bounded exponential backoff: ``first``, doubling up to ``limit`` seconds; reset on success."""

    first: float = 1.0
    limit: float = 30.0
    _next: float = field(default=0.0, init=False)

    def next(self) -> float:
        delay = self._next or self.first
        self._next = min(delay * 2, self.limit)
        return delay

    def reset(self) -> None:
        self._next = 0.0


def problem_line(exc: CardsvcError, *, pause: float | None = None) -> str:
    """What the clerk reads: Chinese and English, the diagnostics, never a traceback."""
    label = next(text for cls, text in _LABELS if isinstance(exc, cls))
    then = f"，{pause:g} 秒后重试 / retrying in {pause:g} s" if pause is not None else ""
    return f"{label}{then}: {exc.diagnostics()}"


_LABELS: tuple[tuple[type[CardsvcError], str], ...] = (
    (CardRemoved, "卡片移开过早，请重新刷卡 / card removed too early, tap again"),
    (ReaderUnavailable, "读卡器不可用 / reader unavailable"),
    (UnknownCard, "不支持的卡片 / unsupported card"),
    (CardError, "读卡失败，请重新刷卡 / could not read the card, tap again"),
    (RateLimited, "请求过于频繁 / too many requests"),
    (ServerUnavailable, "服务器不可用 / server unavailable"),
    (AccessError, "本终端的令牌被拒绝 / this terminal's token was refused"),
    (RegistryError, "服务器拒绝了此卡 / the server refused this card"),
    (CardsvcError, "出错 / error"),
)


@dataclass
class Terminal:
    """The service-point loop over one reader (see the module docstring for what it survives)."""

    reader: CardReader
    profiles: dict[str, Profile]
    server: TapServer
    wait: float = 30.0
    as_json: bool = False
    sleep: Callable[[float], None] = time.sleep
    backoff: Backoff = field(default_factory=Backoff)
    stop: threading.Event = field(default_factory=threading.Event)

    def once(self) -> None:
        """One card; every problem propagates (the CLI maps it to an exit code)."""
        self.reader.wait_for_card(self.wait)
        self._present(self._verify())

    def run(self) -> None:
        """Cards until :attr:`stop` is set (or the process is interrupted)."""
        announce = True
        while not self.stop.is_set():
            if announce:
                err_console.print(f"waiting for a card on {self.reader.name} …", highlight=False)
            announce = self._cycle()

    def _cycle(self) -> bool:
        """One card (or one idle wait); true when a card was handled and the prompt is due again."""
        try:
            self.reader.wait_for_card(self.wait)
        except NoCard:
            return False  # idle: keep waiting, quietly
        except TransportError as exc:  # reader unplugged, pcscd stopped: it may come back
            self._pause(exc, self.backoff.next())
            return False
        if self._tap():
            self._await_removal()
        return True

    def _tap(self) -> bool:
        """Verify the card on the reader; false when the same card should be tried again after a pause."""
        try:
            self._present(self._verify())
        except RateLimited as exc:
            self._pause(exc, exc.retry_after)
            return False
        except ServerUnavailable as exc:
            self._pause(exc, self.backoff.next())
            return False
        except CardsvcError as exc:  # card errors and refusals: show them, next card
            err_console.print(f"[red]{escape(problem_line(exc))}[/]", highlight=False)
        else:
            self.backoff.reset()
        return True

    def _verify(self) -> dict[str, Any]:
        conn = self.reader.connect()
        try:
            return tap_once(conn, self.profiles, self.server)
        finally:
            conn.close()

    def _present(self, result: dict[str, Any]) -> None:
        if self.as_json:
            emit_json(result)
        else:
            show(result)

    def _pause(self, exc: CardsvcError, seconds: float) -> None:
        err_console.print(f"[yellow]{escape(problem_line(exc, pause=seconds))}[/]", highlight=False)
        self.sleep(seconds)

    def _await_removal(self) -> None:
        try:
            self.reader.wait_for_removal(REMOVAL_WAIT_S)
        except CardTimeout:
            return  # left on the reader for an hour: verify it again
        except TransportError as exc:
            err_console.print(f"[red]{escape(problem_line(exc))}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("tap", help="Service-point terminal: verify cards tapped on a reader against the server.")(
        tap_command)


def _first_reader() -> str:
    readers = pcsc.list_readers()
    if not readers:
        raise NoCard("no card reader found")
    return readers[0].name


_WAIT_HELP = "Seconds to wait for a card: with --once then exit 5; in loop mode one idle wait, then again."


def tap_command(
    server: Annotated[str, typer.Option("--server", help="API base URL, e.g. https://cardsvc.example")],
    token: Annotated[str, typer.Option("--token", envvar="CARDSVC_TOKEN", help="This terminal's token.")],
    reader: Annotated[str | None, typer.Option("--reader", help="Reader name (default: the first).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Verify one card, then exit.")] = False,
    wait: Annotated[float, typer.Option("--wait", min=0.1, help=_WAIT_HELP)] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print each result as JSON.")] = False,
) -> None:
    profiles = load_profiles(get_settings().effective_profiles_dir)
    api = HttpTapServer(server, token)
    try:
        terminal = Terminal(PcscReader(reader or _first_reader()), profiles, api, wait=wait, as_json=as_json)
        if once:
            terminal.once()
        else:
            terminal.run()
    finally:
        api.close()
