"""schemathesis against the app's own OpenAPI schema, served by uvicorn on loopback (bounded).

Every operation gets a few generated requests with an admin token (the role that may call almost
everything, so requests reach the handlers): no 5xx, and every response matches the documented
schema and content type. A handful of examples per operation keeps the run well under a minute.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from cardsvc.api.app import create_app
from cardsvc.config import get_settings
from cardsvc.verification.roles import Role
from cardsvc.verification.store import DbClientStore
from cardsvc.verification.tokens import create_client
from tests.api.verify_support import world_services
from tests.support.postgres import free_port
from tests.verification.world import World, make_world, sqlite_url

pytestmark = pytest.mark.slow
EXAMPLES = 10
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, object], World]]:
    with make_world(sqlite_url(tmp_path)) as world:
        world.programme()
        app = create_app(get_settings(env="test"), services=world_services(world))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        try:
            yield base, app.openapi(), world
        finally:
            server.should_exit = True
            thread.join(10)


def test_no_server_errors_and_no_schema_violations(served: tuple[str, dict[str, object], World]) -> None:
    base, openapi, world = served
    token = asyncio.run(create_client(DbClientStore(world.db), label="fuzz", role=Role.admin)).token
    schema = schemathesis.openapi.from_dict(openapi)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 19  # every JSON route (the phone page is not in the schema)

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Case) -> None:
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's first failure
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
    assert httpx.get(base + "/healthz").status_code == 200
