"""The composition root builds each process wired and ready: run with test settings and
fakes at the edges, each does its job end to end on the real stores."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.testing import WorkflowEnvironment

from application.artifacts import ArtifactsApplication
from infrastructure.config import Settings
from infrastructure.di.container import orphan_sweep, pipeline_worker, read_worker, temporal_worker
from infrastructure.eventstore import application_env
from infrastructure.healthcheck import heartbeat_path, task_queue_pollers
from infrastructure.read_model import artifact_catalog
from infrastructure.signals import Process
from tests.contract.backends import RecordingOrchestrator
from tests.fakes import FakeSummarizer
from tests.support import make_settings, wait_until


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    settings = make_settings(tmp_path, "sqlite")
    # No metrics endpoints: tests run side by side.
    return settings.model_copy(
        update={
            "pipeline_worker_metrics_port": 0,
            "read_worker_metrics_port": 0,
            "temporal_worker_metrics_address": "",
            **overrides,
        }
    )


def upload(settings: Settings) -> ArtifactsApplication:
    app = ArtifactsApplication(env=application_env(settings))
    app.create_artifact_once(
        idempotency_key=None,
        filename="hello.txt",
        content_type="text/plain",
        size=5,
        sha256=hashlib.sha256(b"hello").hexdigest(),
        storage_location=f"{uuid4().hex[:2]}/{uuid4().hex}",
    )
    return app


@asynccontextmanager
async def running(process: Process) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(process.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def test_the_pipeline_worker_it_builds_starts_a_workflow_for_each_new_artifact(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    writer = upload(settings)
    orchestrator = RecordingOrchestrator()

    async with running(pipeline_worker(settings, orchestrator=orchestrator)):
        await wait_until(lambda: bool(orchestrator.started), timeout=10, what="a workflow started")
        await wait_until(
            lambda: heartbeat_path(settings, "pipeline_worker").exists(),
            timeout=10,
            what="the heartbeat",
        )

    [request] = orchestrator.requests
    assert writer.get_artifact(request.artifact_id).filename == "hello.txt"
    writer.close()


async def test_the_read_worker_it_builds_lists_each_new_artifact(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    writer = upload(settings)
    catalog = artifact_catalog(settings)

    def listed() -> int:
        page = catalog.list_artifacts(
            status=None, mime_type=None, limit=10, cursor=None, tenant=None
        )
        return len(page.items)

    async with running(read_worker(settings)):
        await wait_until(lambda: listed() == 1, timeout=10, what="the artifact listed")
        assert heartbeat_path(settings, "read_worker").exists()

    catalog.close()
    writer.close()


def test_the_orphan_sweep_it_builds_sweeps_the_configured_blob_directory(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    orphan = settings.blob_dir / "ab" / ("0" * 32)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"nobody's")

    report = orphan_sweep(settings)(older_than=0, dry_run=True)

    assert report.orphans == [orphan.relative_to(settings.blob_dir).as_posix()]


@pytest.mark.temporal
async def test_the_temporal_worker_it_builds_polls_the_task_queue_until_stopped(
    tmp_path: Path, temporal_dev_env: WorkflowEnvironment
) -> None:
    settings = settings_for(tmp_path, temporal_task_queue=f"root-{uuid4()}")
    client = temporal_dev_env.client
    process = temporal_worker(settings, client=client, summarizer=FakeSummarizer())

    async def polled() -> bool:
        return bool(await task_queue_pollers(client, settings.temporal_task_queue))

    async with running(process):
        await wait_until(polled, timeout=20, what="the worker polls its task queue")
