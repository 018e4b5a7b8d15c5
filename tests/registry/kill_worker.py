"""Subprocess for the kill test: import FILE into URL, printing progress so the parent can kill it."""

from __future__ import annotations

import sys
from pathlib import Path

from cardsvc.registry.db import make_engine, session_factory
from cardsvc.registry.pii import PiiCipher
from cardsvc.registry.services import RegistryService
from tests.registry.conftest import DATA_KEY_1, INDEX_KEY, clock


def main(url: str, path: str) -> None:
    service = RegistryService(session_factory(make_engine(url)), PiiCipher({1: DATA_KEY_1}, 1, INDEX_KEY),
                              clock=clock)

    def progress(done: int, _expected: int | None) -> None:
        sys.stdout.write(f"progress {done}\n")
        sys.stdout.flush()

    report = service.import_members(Path(path), progress=progress)
    sys.stdout.write(f"done {report.created}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
