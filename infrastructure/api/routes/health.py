"""Is the API alive, can it serve, what has it done: ``/health``, ``/ready``, ``/metrics``.

``/health`` is open (an orchestrator's liveness probe carries no key); readiness and metrics
say more about the deployment, so they sit behind the key like the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from infrastructure.api.dependencies import Metrics, Services, authenticated
from infrastructure.api.problems import documented
from infrastructure.api.schemas import Health, HealthCheck, Liveness

public = APIRouter()
router = APIRouter(dependencies=[authenticated], responses=documented(401))


@public.get("/health", response_model=Liveness, summary="Liveness: the process answers")
async def health() -> Liveness:
    return Liveness(status="ok")


@router.get(
    "/ready",
    response_model=Health,
    # Not a problem: a degraded readiness report is still the report, check by check.
    responses={503: {"model": Health}},
    summary="Readiness: the event store, the blob store and Temporal are reachable",
)
async def ready(services: Services) -> JSONResponse:
    probe = services.temporal_probe
    event_store, blobs, temporal = await asyncio.gather(
        _check(lambda: run_in_threadpool(services.artifacts.recorder.max_notification_id)),
        _check(lambda: run_in_threadpool(services.blob_store.check)),
        _check(probe) if probe else _not_configured(),
    )
    ok = event_store.ok and blobs.ok and temporal.ok
    body = Health(
        status="ok" if ok else "degraded",
        event_store=event_store,
        blob_store=blobs,
        temporal=temporal,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    summary="Prometheus metrics of this process",
)
def prometheus_metrics(metrics: Metrics) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def _check(probe: Callable[[], Awaitable[Any]], within: float = 3.0) -> HealthCheck:
    try:
        await asyncio.wait_for(probe(), timeout=within)
    except Exception as err:
        return HealthCheck(ok=False, detail=f"unreachable: {err!r}")
    return HealthCheck(ok=True, detail="reachable")


async def _not_configured() -> HealthCheck:
    return HealthCheck(ok=False, detail="not configured")
