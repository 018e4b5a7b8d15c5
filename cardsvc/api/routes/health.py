"""Public operational routes: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from cardsvc.api.auth import services_of
from cardsvc.api.problems import problem
from cardsvc.api.services import ReadinessProbe, run_probe
from cardsvc.logging import get_logger

log = get_logger(__name__)
router = APIRouter(tags=["operations"])

PROBE_TIMEOUT_S = 2.0


@router.get("/healthz", name="healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving (no dependencies checked)."""
    return {"status": "ok"}


@router.get("/readyz", name="readyz", responses={503: {"description": "a probe failed"}})
async def readyz(request: Request) -> JSONResponse:
    """Run every readiness probe (database, key store, Redis …); 503 names the ones that failed."""
    services = services_of(request)
    failed = [name for name, probe in services.readiness.items() if not await _probe_ok(name, probe)]
    if failed:
        return problem(503, "not_ready", "readiness probes failed", failed=failed)
    return JSONResponse({"status": "ready", "probes": sorted(services.readiness)})


async def _probe_ok(name: str, probe: ReadinessProbe) -> bool:
    try:
        await asyncio.wait_for(run_probe(probe), PROBE_TIMEOUT_S)
    except Exception as exc:  # any failure, timeouts included, means "not ready"
        log.warning("readiness probe %s failed: %s", name, type(exc).__name__)
        return False
    return True


@router.get("/metrics", name="metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of request counts and latencies."""
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
