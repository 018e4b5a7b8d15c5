"""Run ``cardsvc`` in process against a fresh dev data directory: ``(exit code, stdout, stderr)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cardsvc.cli.main import run

Cli = Callable[..., tuple[int, str, str]]


def in_process_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]) -> Cli:
    """A dev environment in ``tmp_path/var`` (SQLite), and a callable that runs one command in it."""
    monkeypatch.setenv("CARDSVC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CARDSVC_ENV", "dev")
    monkeypatch.delenv("CARDSVC_DATABASE_URL", raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            run(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
