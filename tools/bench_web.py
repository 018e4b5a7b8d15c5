#!/usr/bin/env python3
"""Web pages benchmark (in process, no network): what the pages add to the API and what a login costs.

    .venv/bin/python tools/bench_web.py [--rounds 15] [--requests 2000]

Printed, each as the minimum over rounds (the machine is shared; minima are the stable number):
* GET /healthz through the API app alone and through the composed app (pages + API): the
  dispatcher's cost per API request;
* GET /login (a full page: template, catalog, headers) through the composed app;
* one argon2id password verification with the production parameters (argon2-cffi defaults),
  which bounds how many logins per second a core can check.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from cardsvc.api.app import create_app
from cardsvc.api.services import in_memory_services
from cardsvc.config import get_settings
from cardsvc.web.app import Composed, create_pages

App = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[Any], Awaitable[None]]],
               Awaitable[None]]


def _scope(path: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(_message: Any) -> None:
    return None


async def _per_request_us(app: App, path: str, requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        await app(_scope(path), _receive, _send)
    return (time.perf_counter() - start) / requests * 1e6


async def _measure(rounds: int, requests: int) -> dict[str, float]:
    settings = get_settings(env="test", data_dir=Path(tempfile.mkdtemp(prefix="bench-web-")))
    services = in_memory_services(settings)
    api = create_app(settings, services=services)
    both = Composed(create_pages(settings, services), api)
    cases: list[tuple[str, App, str, int]] = [
        ("healthz_api_only_us", api, "/healthz", requests),
        ("healthz_composed_us", both, "/healthz", requests),
        ("login_page_us", both, "/login", max(1, requests // 10)),
    ]
    best = dict.fromkeys((name for name, *_ in cases), float("inf"))
    for index in range(rounds):
        order = cases if index % 2 else list(reversed(cases))  # alternate: no case always runs first
        for name, app, path, count in order:
            best[name] = min(best[name], await _per_request_us(app, path, count))
    return best


def _argon2_ms(rounds: int) -> float:
    hasher = PasswordHasher()
    hashed = hasher.hash("a long enough password")
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        hasher.verify(hashed, "a long enough password")
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    best = asyncio.run(_measure(args.rounds, args.requests))
    for name, value in best.items():
        print(f"{name:24s} {value:10.1f}")
    print(f"{'dispatch_overhead_us':24s} {best['healthz_composed_us'] - best['healthz_api_only_us']:10.1f}")
    print(f"{'argon2id_verify_ms':24s} {_argon2_ms(max(3, args.rounds // 3)):10.1f}")


if __name__ == "__main__":
    main()
