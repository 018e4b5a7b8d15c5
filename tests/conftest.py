"""Suite-wide fixtures. Area-specific fixtures live in ``tests/<area>/conftest.py``.

``pcsc_stack``: a private pcscd with vpcd readers and the emulator (see tests/support/pcsc_stack.py).
It fails loudly — never skips — when root, pcscd, vsmartcard-vpcd or unshare are missing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cardsvc.emulator.pcscd import SOCKET_ENV
from tests.support.pcsc_stack import PcscStack


def pytest_configure(config: pytest.Config) -> None:
    # pcsc-lite reads PCSCLITE_CSOCK_NAME once per process: point it, before any PC/SC call, at a
    # symlink each private pcscd re-targets. Tests never talk to a system pcscd by accident.
    del config
    link_dir = Path(tempfile.mkdtemp(prefix="cardsvc-test-pcsc-"))
    os.environ[SOCKET_ENV] = str(link_dir / "pcscd.comm")


@pytest.fixture
def pcsc_stack(tmp_path: Path) -> Iterator[Callable[[int], PcscStack]]:
    """``pcsc_stack(readers)`` starts a private pcscd with that many vpcd readers."""
    stacks: list[PcscStack] = []

    def start(readers: int = 2) -> PcscStack:
        stack = PcscStack(readers, tmp_path / f"pcscd{len(stacks)}")
        stacks.append(stack)
        return stack.start()

    yield start
    for stack in reversed(stacks):
        stack.close()
