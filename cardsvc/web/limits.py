"""Body limit of the pages: a member-list upload may be a few MiB, nothing more (a bilingual 413)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_PAGE_BODY = 8 * 1024 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimit:
    """Refuse a declared ``Content-Length`` over the limit at once, and a longer stream as it grows."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_PAGE_BODY) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _too_large(send)
            return
        state = _Stream()
        try:
            await self.app(scope, self._counting(receive, state), self._guarded(send, state))
        except BodyTooLarge:
            pass  # answered below (or already, by the guarded send)
        if state.exceeded and not state.answered:
            await _too_large(send)

    def _counting(self, receive: Receive, state: _Stream) -> Receive:
        async def counted() -> Message:
            message = await receive()
            state.seen += len(message.get("body", b""))
            if state.seen > self.max_body:
                state.exceeded = True
                raise BodyTooLarge
            return message

        return counted

    @staticmethod
    def _guarded(send: Send, state: _Stream) -> Send:
        """Whatever the app answers once the limit is passed (FastAPI turns a failed form read into
        a 400) is replaced by the 413."""

        async def guarded(message: Message) -> None:
            if not state.exceeded:
                await send(message)
            elif message["type"] == "http.response.start" and not state.answered:
                state.answered = True
                await _too_large(send)

        return guarded


@dataclass
class _Stream:
    seen: int = 0
    exceeded: bool = False
    answered: bool = False


class BodyTooLarge(Exception):
    """A streamed body passed the limit (the pages' error handlers answer 413)."""


async def _too_large(send: Send) -> None:
    body = "上传内容过大 / The upload is too large.".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
