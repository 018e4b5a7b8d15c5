"""Independent service replicas on one database: separate engines and locks, like separate workers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from cardsvc.registry.db import make_engine
from cardsvc.verification.db import Database
from cardsvc.verification.service import VerificationService
from tests.verification.world import World


@contextmanager
def replicas(world: World, count: int) -> Iterator[list[VerificationService]]:
    url = world.db.engine.url.render_as_string(hide_password=False)
    services = [replace(world.svc, db=Database(make_engine(url)), sun_checkers={}) for _ in range(count)]
    try:
        yield services
    finally:
        for svc in services:
            svc.db.engine.dispose()
