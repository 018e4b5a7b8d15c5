"""`cardsvc serve`: the HTTP API and the staff pages under uvicorn (``cardsvc.web.app:app_from_env``).

The CLI never imports the API package: uvicorn imports the factory by name in each worker, and each
worker builds its own app from ``CARDSVC_*``. More than one worker: each listens on its own
``SO_REUSEPORT`` socket (:mod:`cardsvc.cli.workers`), so connections spread over all of them, and
Prometheus metrics are aggregated across workers through a fresh ``PROMETHEUS_MULTIPROC_DIR``
(removed on exit) unless one is already set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from cardsvc.cli.workers import serve_app
from cardsvc.config import get_settings

APP_FACTORY = "cardsvc.web.app:app_from_env"  # the API and the staff pages (cardsvc/web)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("serve", help="Run the verification API (uvicorn, settings from CARDSVC_*).")(serve_command)


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    settings = get_settings()  # refuse bad settings here, before any worker starts
    with _metrics_dir(workers):
        serve_app(APP_FACTORY, host=host, port=port, workers=workers, log_level=settings.log_level.lower())


@contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    if workers == 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="cardsvc-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)
