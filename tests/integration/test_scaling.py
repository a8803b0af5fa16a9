"""Scaling out, with real processes: what may run several times, and what that costs.

- Several Temporal workers on one task queue share the work, and each workflow still
  completes exactly once (Temporal hands each task to one poller).
- Several pipeline workers on one event stream each ask for every start; the workflow-id
  policy turns the duplicates into no-ops, so each artifact still gets exactly one run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest
from domain.artifact import workflow_id_for
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from infrastructure.healthcheck import task_queue_pollers
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator
from tests.support import Process, make_settings, wait_until

pytestmark = pytest.mark.temporal

WORKFLOWS = 12


def process_env(settings: Settings, client: Client, task_queue: str) -> dict[str, str]:
    """Every setting a process needs, by environment only, as in a container (on top of
    this process's environment, for PATH and the like)."""
    s = settings
    return {
        **os.environ,
        "DATA_DIR": str(s.data_dir),
        "EVENT_STORE": s.event_store,
        "SQLITE_POLL_INTERVAL": str(s.sqlite_poll_interval),
        "POSTGRES_HOST": s.postgres_host,
        "POSTGRES_PORT": str(s.postgres_port),
        "POSTGRES_DBNAME": s.postgres_dbname,
        "POSTGRES_USER": s.postgres_user,
        "POSTGRES_PASSWORD": s.postgres_password.get_secret_value(),
        "POSTGRES_SCHEMA": s.postgres_schema,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "ACTIVITY_THREADS": "4",
        # Two of a kind on one host: fixed metrics ports would be taken by the first.
        "PIPELINE_WORKER_METRICS_PORT": "0",
        "READ_WORKER_METRICS_PORT": "0",
        "TEMPORAL_WORKER_METRICS_ADDRESS": "",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }


@asynccontextmanager
async def processes(
    module: str, n: int, env: dict[str, str], logs: Path
) -> AsyncIterator[list[Process]]:
    """``n`` copies of ``python -m module``; SIGTERM at the end, SIGKILL for stragglers."""
    started = [
        Process.python_module(module, env=env, log_path=logs / f"{module}-{i}.log")
        for i in range(n)
    ]
    try:
        yield started
    finally:
        for process in started:
            process.send(signal.SIGTERM)
        for process in started:
            try:
                await process.wait_for_exit(timeout=30)
            finally:
                process.kill_tree()


def upload(settings: Settings, n: int) -> list[ProcessingRequest]:
    """Stores ``n`` small text files and records their artifacts, as the API does."""
    app = ArtifactsApplication(env=application_env(settings))
    blobs = LocalBlobStore(settings.blob_dir)
    requests = []
    try:
        for i in range(n):
            content = f"scaling test file {i} {uuid.uuid4()}\n".encode()
            writer = blobs.writer()
            writer.write(content)
            blob = writer.commit()
            request = ProcessingRequest(
                artifact_id=uuid.uuid4(),  # replaced by the id the application gives it
                storage_location=blob.location,
                content_type="text/plain",
                size=blob.size,
                sha256=hashlib.sha256(content).hexdigest(),
            )
            artifact_id = app.create_artifact_once(
                idempotency_key=None,
                filename=f"note-{i}.txt",
                content_type=request.content_type,
                size=request.size,
                sha256=request.sha256,
                storage_location=request.storage_location,
            ).id
            requests.append(dataclasses.replace(request, artifact_id=artifact_id))
        return requests
    finally:
        app.close()


async def exactly_one_run(
    client: Client, artifact_id: UUID, status: WorkflowExecutionStatus
) -> None:
    """Temporal lists one run for the artifact, in ``status``.

    The list (visibility) is eventually consistent: it may lag behind for a moment, so it is
    read until it agrees, and any second run it ever shows fails the test at once.
    """
    query = f'WorkflowId = "{workflow_id_for(artifact_id)}"'

    async def one_run_in_status() -> bool:
        runs = [run.status async for run in client.list_workflows(query)]
        assert len(runs) <= 1, f"{artifact_id} has {len(runs)} runs"
        return runs == [status]

    await wait_until(one_run_in_status, timeout=15, what=f"{artifact_id} listed as {status.name}")


async def activity_workers(client: Client, workflow_id: str) -> list[str]:
    """The identity of the worker that ran each of the workflow's activity attempts."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        e.activity_task_started_event_attributes.identity
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]


async def test_two_temporal_workers_share_one_task_queue_and_each_workflow_completes_once(
    tmp_path: Path, sqlite_settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    settings, client = sqlite_settings, temporal_dev_env.client
    task_queue = f"scaling-{uuid.uuid4()}"
    env = process_env(settings, client, task_queue)

    async with processes("infrastructure.temporal.worker", 2, env, tmp_path) as workers:
        pids = {str(w.pid) for w in workers}
        await wait_until(
            lambda: _polled_by(client, task_queue, pids),
            timeout=60,
            what="both Temporal workers poll the task queue",
        )
        assert _healthcheck("temporal_worker", env) == 0

        requests = await asyncio.to_thread(upload, settings, WORKFLOWS)
        orchestrator = TemporalWorkflowOrchestrator(client, task_queue)
        for request in requests:
            assert await orchestrator.start_processing(request)
        ids = [r.artifact_id for r in requests]
        handles = [client.get_workflow_handle(workflow_id_for(i)) for i in ids]
        # Bounded: a broken workflow would otherwise retry for minutes (its retry policies).
        await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=90)
        per_workflow = [await activity_workers(client, workflow_id_for(i)) for i in ids]

    for artifact_id in ids:
        await exactly_one_run(client, artifact_id, WorkflowExecutionStatus.COMPLETED)
    by_worker = Counter(identity.split("@")[0] for ran in per_workflow for identity in ran)
    print(f"activities per worker pid: {dict(by_worker)}")
    assert set(by_worker) == pids, f"the load was not shared: {dict(by_worker)}"


async def test_two_pipeline_workers_at_once_start_exactly_one_run_per_artifact(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    # No Temporal worker polls this queue: the runs stay open, which is enough to count them.
    task_queue = f"scaling-{uuid.uuid4()}"
    env = process_env(settings, client, task_queue)

    async with processes("infrastructure.pipeline_worker", 2, env, tmp_path) as workers:
        # Both subscribed before the uploads, so both see every event. (A worker that starts
        # later begins at the position the other recorded, and asks for nothing twice.)
        await wait_until(
            lambda: all("pipeline_worker_subscribed" in w.output() for w in workers),
            timeout=60,
            what="both pipeline workers have subscribed",
        )
        assert _healthcheck("pipeline_worker", env) == 0
        ids = [r.artifact_id for r in await asyncio.to_thread(upload, settings, 20)]
        await wait_until(
            lambda: all(_answered(w) >= set(map(str, ids)) for w in workers),
            timeout=60,
            what="both pipeline workers have asked for every artifact",
        )
        started = [entry for w in workers for entry in _log_events(w, "workflow_started")]

    # Both may report a start for the same artifact (the second joins the open run: the
    # conflict policy is USE_EXISTING), but never two different runs for one artifact.
    runs_per_artifact: dict[str, set[str]] = {}
    for entry in started:
        runs_per_artifact.setdefault(entry["artifact_id"], set()).add(entry["run_id"])
    assert set(runs_per_artifact) == set(map(str, ids))
    assert all(len(runs) == 1 for runs in runs_per_artifact.values()), runs_per_artifact
    for artifact_id in ids:
        await exactly_one_run(client, artifact_id, WorkflowExecutionStatus.RUNNING)
        await client.get_workflow_handle(workflow_id_for(artifact_id)).terminate("test done")


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "sqlite")


async def _polled_by(client: Client, task_queue: str, pids: set[str]) -> bool:
    pollers = await task_queue_pollers(client, task_queue)
    return {identity.split("@")[0] for identity in pollers} >= pids


def _healthcheck(process: str, env: dict[str, str]) -> int:
    return subprocess.run(
        [sys.executable, "-m", "infrastructure.healthcheck", process],
        env=env,
        timeout=60,
        check=False,
    ).returncode


def _log_events(process: Process, event: str) -> list[dict[str, str]]:
    """The JSON log lines with this event."""
    found = []
    for line in process.output().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == event:
                found.append(entry)
    return found


def _answered(process: Process) -> set[str]:
    answers = _log_events(process, "workflow_started")
    answers += _log_events(process, "workflow_already_started")
    return {entry["artifact_id"] for entry in answers}
