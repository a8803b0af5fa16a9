"""Scenario "trigger": how fast the pipeline worker turns a backlog into workflow starts.

Project: N ``ArtifactCreated`` events already in the store, drained by the real
``PipelineWorker`` (in process, real ``TemporalWorkflowOrchestrator``, a fresh task queue
that no Temporal worker polls, so the runs simply stay open). Baseline: the same N starts
(same workflow, input, id policies, search attribute and memo) from a plain loop on the same
client, at whichever concurrency of 16/32/64 starts fastest.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest, WorkflowOrchestrator
from bench.report import Result, result
from infrastructure.eventstore import application_env, tracking_recorder
from infrastructure.pipeline_worker import CONSUMER, PipelineWorker
from infrastructure.temporal.orchestrator import (
    TemporalWorkflowOrchestrator,
    memo_for,
    search_attributes_for,
)
from infrastructure.temporal.workflows import ProcessArtifactWorkflow
from tests.support import fresh_settings

CONCURRENCIES = (16, 32, 64)


async def run(client: Client, root: Path, store: str, *, n: int, rounds: int) -> Result:
    concurrency = await best_concurrency(client, n=min(n, 300))
    measured: list[tuple[float, float]] = []
    for _ in range(rounds):
        project = await drain_backlog(client, root, store, n=n)
        baseline = await start_directly(client, n=n, concurrency=concurrency)
        measured.append((project, baseline))
    return result(
        f"trigger ({store})",
        "starts/s",
        measured,
        target=0.9,
        note=f"N={n}; baseline at concurrency {concurrency}",
    )


async def drain_backlog(
    client: Client,
    root: Path,
    store: str,
    *,
    n: int,
    orchestrator_for: Callable[[Client, str], WorkflowOrchestrator] = TemporalWorkflowOrchestrator,
) -> float:
    """Starts per second of a pipeline worker draining a backlog of ``n`` uploads; its
    orchestrator is ``orchestrator_for(client, task_queue)``."""
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    with fresh_settings(
        root,
        store,
        temporal_address=client.service_client.config.target_host,
        task_queue=task_queue,
    ) as settings:
        app = ArtifactsApplication(env=application_env(settings))
        tracking = tracking_recorder(settings, CONSUMER)
        try:
            await asyncio.to_thread(create_backlog, app, n)
            last = app.recorder.max_notification_id()
            worker = PipelineWorker(
                app,
                tracking,
                orchestrator_for(client, task_queue),
                max_in_flight=settings.pipeline_max_in_flight,
            )
            stop = asyncio.Event()
            started = time.perf_counter()
            task = asyncio.create_task(worker.run(stop))
            while (worker.position or 0) < (last or 0):
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            stop.set()
            await task
        finally:
            app.close()
    return n / elapsed


def create_backlog(app: ArtifactsApplication, n: int) -> None:
    for i in range(n):
        app.create_artifact_once(idempotency_key=None, **upload(i))


def upload(i: int) -> dict[str, Any]:
    """The facts of the backlog's ``i``-th upload (no blob is written: no run reads it)."""
    return {
        "filename": f"bench-{i}.txt",
        "content_type": "text/plain",
        "size": 10_240,
        "sha256": f"{i:064x}",
        "storage_location": f"bench/{i}",
    }


def _request() -> ProcessingRequest:
    """A request like the ones the worker sends (no run reads its blob here)."""
    return ProcessingRequest(
        artifact_id=uuid.uuid4(),
        storage_location="bench/0",
        content_type="text/plain",
        size=10_240,
        sha256="0" * 64,
    )


async def start_directly(client: Client, *, n: int, concurrency: int) -> float:
    """Starts per second of ``n`` plain starts, ``concurrency`` at a time (bounded batches)."""
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"

    async def start() -> None:
        request = _request()
        await client.start_workflow(
            ProcessArtifactWorkflow.run,
            request,
            id=f"artifact-{request.artifact_id}",
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=search_attributes_for(request),
            memo=memo_for(request),
        )

    started = time.perf_counter()
    for batch in range(0, n, concurrency):
        await asyncio.gather(*(start() for _ in range(min(concurrency, n - batch))))
    return n / (time.perf_counter() - started)


async def best_concurrency(client: Client, *, n: int) -> int:
    """The concurrency at which plain starts go fastest on this machine right now."""
    rates = {c: await start_directly(client, n=n, concurrency=c) for c in CONCURRENCIES}
    return max(rates, key=lambda c: rates[c])
