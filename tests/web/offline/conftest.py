"""Fixtures for the offline-verifier modules: a tiny local server and a Chromium page on it.

The server serves ``cardsvc/web/static/js/offline/*.js`` under ``/js/offline/`` and an empty page at
``/``, so the modules run in a secure context (``http://127.0.0.1``) with WebCrypto and IndexedDB.
``POST /v1/checkins/sync`` is a stand-in for the real route with its idempotency contract (one
record per ``Idempotency-Key``; a repeated key answers ``duplicate``), or, with ``upstream`` set,
forwards ``/v1/…`` to a real cardsvc server; ``drop_next`` makes it record (or forward) a batch
and then cut the connection without answering, as a lost response would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

# ``browser`` and ``playwright_driver`` come from tests/web/conftest.py: importing them here again
# would register a second session-wide Playwright, which refuses to start beside the first.

MODULES = Path(__file__).resolve().parents[3] / "cardsvc" / "web" / "static" / "js" / "offline"
PAGE = b"<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>offline</title><body></body></html>"


@dataclass
class SyncLedger:
    """What the stand-in sync route recorded: one row per idempotency key, every request seen."""

    records: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: list[list[str]] = field(default_factory=list)
    drop_next: int = 0
    delay_s: float = 0.0  # answer this much later (a slow link: lets two syncs overlap)
    upstream: str | None = None  # forward /v1/… to this real server instead of answering here
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.records.clear()
            self.requests.clear()
            self.drop_next = 0
            self.delay_s = 0.0
            self.upstream = None

    def answer(self, body: dict[str, object]) -> list[dict[str, object]]:
        items = body["items"]
        assert isinstance(items, list)
        with self.lock:
            self.requests.append([str(item["idempotency_key"]) for item in items])
            return [self._one(str(body["programme"]), item) for item in items]

    def _one(self, programme: str, item: dict[str, str]) -> dict[str, object]:
        key = item["idempotency_key"]
        if key in self.records:
            number = list(self.records).index(key) + 1
            return {"idempotency_key": key, "status": "duplicate", "checkin_id": number}
        if item["qr"].endswith("REFUSED"):
            return {"idempotency_key": key, "status": "conflict", "reason": "already_checked_in"}
        self.records[key] = {"programme": programme, "qr": item["qr"], "at": item["checked_in_at"]}
        return {"idempotency_key": key, "status": "accepted", "checkin_id": len(self.records)}


class _Handler(BaseHTTPRequestHandler):
    ledger: SyncLedger

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, "text/html; charset=utf-8", PAGE)
            return
        if self.path.startswith("/v1/") and self.ledger.upstream is not None:
            self._send(*self._forward("GET"))
            return
        name = self.path.removeprefix("/js/offline/")
        target = MODULES / name
        if name == self.path or "/" in name or not target.is_file():
            self._send(404, "text/plain", b"not found")
            return
        self._send(200, "text/javascript; charset=utf-8", target.read_bytes())

    def do_POST(self) -> None:
        if self.path != "/v1/checkins/sync":
            self._send(404, "text/plain", b"not found")
            return
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.ledger.delay_s)
        if self.ledger.upstream is not None:
            status, content_type, answer = self._forward("POST", raw)
            self.ledger.requests.append([str(i["idempotency_key"]) for i in json.loads(raw)["items"]])
        else:
            answers = self.ledger.answer(json.loads(raw))
            status, content_type, answer = 200, "application/json", json.dumps(answers).encode()
        if self.ledger.drop_next:
            self.ledger.drop_next -= 1
            self.close_connection = True
            self.connection.close()  # recorded, never answered: a lost response
            return
        self._send(status, content_type, answer)

    def _forward(self, method: str, body: bytes | None = None) -> tuple[int, str, bytes]:
        """The request as the real server answers it (same path, body and Authorization)."""
        assert self.ledger.upstream is not None
        headers = {k: v for k, v in self.headers.items() if k.lower() in {"authorization", "content-type"}}
        url = self.ledger.upstream + self.path
        reply = httpx.request(method, url, content=body, headers=headers, timeout=30)
        return reply.status_code, reply.headers.get("content-type", "application/octet-stream"), reply.content

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


@dataclass
class StaticServer:
    base_url: str
    ledger: SyncLedger


@pytest.fixture(scope="session")
def static_server() -> Iterator[StaticServer]:
    ledger = SyncLedger()
    handler = type("Handler", (_Handler,), {"ledger": ledger})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield StaticServer(f"http://127.0.0.1:{server.server_address[1]}", ledger)
    server.shutdown()
    server.server_close()


@pytest.fixture
def ledger(static_server: StaticServer) -> SyncLedger:
    """The stand-in sync route's records, empty at the start of the test."""
    static_server.ledger.reset()
    return static_server.ledger


@pytest.fixture
def offline_page(browser: Browser, static_server: StaticServer) -> Iterator[Page]:
    """A fresh context (own IndexedDB) on the local server's empty page; page errors fail the test."""
    context = browser.new_context(base_url=static_server.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/")
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
