"""The request guard: body size limit, content-type check, and the last-resort 500.

A pure ASGI middleware (no per-request task or thread). For methods that carry a body it buffers
at most ``max_body`` bytes — refusing a larger ``Content-Length`` before reading anything, and a
longer chunked body as soon as it passes the limit (413) — and refuses a non-empty body that is not
JSON (415). Any exception that escapes the app becomes a problem+json 500 with an opaque id; the
traceback goes to the server log under that id, never to the client.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardsvc.api.problems import internal_error, problem
from cardsvc.logging import get_logger

log = get_logger(__name__)

DEFAULT_MAX_BODY = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Refused(Exception):  # an HTTP-level signal inside the api package, never leaves it
    """A request the guard refuses (413 / 415); the guard and the hot routes answer it."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            if scope["method"] in _BODY_METHODS:
                receive = await self._buffered(scope, receive)
            await self.app(scope, receive, tracking_send)
        except Refused as refused:
            await problem(refused.status, refused.code, refused.detail)(scope, receive, send)
        except Exception:
            if started:
                log.exception("unhandled exception after the response started: %s", scope["path"])
                return
            await internal_error(exc_info=True)(scope, receive, send)

    async def _buffered(self, scope: Scope, receive: Receive) -> Receive:
        return _replay(await read_json_body(scope, receive, self.max_body), receive)


async def read_json_body(scope: Scope, receive: Receive, max_body: int) -> bytes:
    """The whole body: 413 past ``max_body`` (by Content-Length before reading, or as soon as a
    streamed body passes it), 415 when a non-empty body is not JSON."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise Refused(413, "payload_too_large", f"request body over {max_body} bytes")
    body = await _read(receive, max_body)
    if body and not is_json(header(scope, b"content-type") or ""):
        raise Refused(415, "unsupported_media_type", "request bodies must be application/json")
    return body


async def _read(receive: Receive, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # client went away; the app will see an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise Refused(413, "payload_too_large", f"request body over {max_body} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
