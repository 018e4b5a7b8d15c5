"""Prometheus metrics: request counts and latency by route template, method and status.

Each app owns its registry (no module globals). Under ``cardsvc serve --workers N`` (N > 1) the CLI
points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start; ``/metrics`` then
aggregates every worker's samples with prometheus-client's multiprocess collector.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """The app's collectors and their text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cardsvc_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cardsvc_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
            registry=self.registry, buckets=_BUCKETS,
        )

        # labels() costs a few µs per call; label sets are bounded (route templates), so cache them.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """``(body, content type)`` in the Prometheus text format."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - start
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # bounded labels
            self.metrics.observe(method, route_template(scope), status, elapsed)
