"""`cardsvc tap`: the service-point terminal — wait for a card on a reader, prove it to the server.

Per card: ``POST /v1/challenges`` → the card answers (FMCOS: INTERNAL AUTHENTICATE over the first
block of the challenge; NTAG 424 DNA: a fresh SUN read) → ``POST /v1/verify/card`` → show the
outcome and what this client's role may see. The terminal holds no card keys: the server checks
the proof with the diversified keys and the live status, and writes the audit row.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

import httpx
import typer

from cardsvc.cardcrypto import fmcos as fc
from cardsvc.cli.output import console, emit_json, err_console
from cardsvc.config import get_settings
from cardsvc.drivers.base import driver_for
from cardsvc.errors import (
    AuthenticationRequired,
    CardsvcError,
    Conflict,
    InvalidRecord,
    NoCard,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnknownCard,
)
from cardsvc.profiles import Profile, load_profiles, match_atr
from cardsvc.profiles.fmcos import FmcosConfig
from cardsvc.transport import pcsc
from cardsvc.transport.base import CardConnection

_STYLE = {"OK": "bold green", "NOK": "bold red", "CHECK": "bold yellow"}


class TapServer(Protocol):
    def post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]: ...


def raise_problem(status: int, problem: dict[str, Any]) -> None:
    """Turn a problem+json answer into the matching cardsvc error (the CLI maps it to an exit code)."""
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
        raise RateLimited(retry_after=int(problem.get("retry_after", 1)))
    if status in (413, 415, 422):
        raise InvalidRecord(detail or "request refused", field=str(problem.get("field", "request")))
    raise CardsvcError(f"server error {status}: {detail}")


class HttpTapServer:
    """The verification API over HTTP with a bearer token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout,
                                    headers={"Authorization": f"Bearer {token}"})

    def post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        response = self._client.post(path, json=body)
        if response.status_code >= 400:
            raise_problem(response.status_code, _json(response))
        data: dict[str, Any] = response.json()
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("tap", help="Service-point terminal: verify cards tapped on a reader against the server.")(
        tap_command)


def _first_reader() -> str:
    readers = pcsc.list_readers()
    if not readers:
        raise NoCard("no card reader found")
    return readers[0].name


def tap_command(
    server: Annotated[str, typer.Option("--server", help="API base URL, e.g. https://cardsvc.example")],
    token: Annotated[str, typer.Option("--token", envvar="CARDSVC_TOKEN", help="This terminal's token.")],
    reader: Annotated[str | None, typer.Option("--reader", help="Reader name (default: the first).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Verify one card, then exit.")] = False,
    wait: Annotated[float, typer.Option("--wait", min=0.1, help="Seconds to wait for a card.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print each result as JSON.")] = False,
) -> None:
    profiles = load_profiles(get_settings().effective_profiles_dir)
    name = reader or _first_reader()
    api = HttpTapServer(server, token)
    try:
        while True:
            _serve_one(name, profiles, api, wait=wait, as_json=as_json, once=once)
            if once:
                return
            pcsc.wait_for_removal(name, 3600)
    finally:
        api.close()


def _serve_one(reader: str, profiles: dict[str, Profile], api: TapServer, *, wait: float, as_json: bool,
               once: bool) -> None:
    if not once:
        err_console.print(f"waiting for a card on {reader} …", highlight=False)
    pcsc.wait_for_card(reader, wait)
    conn = pcsc.connect(reader)
    try:
        result = tap_once(conn, profiles, api)
    except (Conflict, NotFound, UnknownCard) as exc:
        if once:
            raise
        err_console.print(f"[red]refused:[/] {exc.diagnostics()}", highlight=False)
        return
    finally:
        conn.close()
    if as_json:
        emit_json(result)
    else:
        show(result)
