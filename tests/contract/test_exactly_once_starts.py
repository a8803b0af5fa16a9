"""The pipeline worker's promise on every event store: each ``ArtifactCreated`` is asked
to start once per worker that sees it, and exactly one run is ever started for it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.artifact import workflow_id_for
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator
from tests.contract.backends import Backend, RecordingOrchestrator, running
from tests.support import wait_until


async def test_every_artifact_is_started_once_and_the_position_follows(backend: Backend) -> None:
    before = backend.upload(5)
    orchestrator = RecordingOrchestrator()
    worker = backend.worker(orchestrator)

    async with running(worker):
        await wait_until(lambda: orchestrator.requested(before), timeout=20, what="5 starts")
        during = backend.upload(3)
        await wait_until(lambda: orchestrator.requested(during), timeout=20, what="3 more")
        last = backend.writer.recorder.max_notification_id()
        await wait_until(lambda: worker.position == last, timeout=20, what="position recorded")

    assert sorted(orchestrator.started) == sorted(before + during)
    assert len(orchestrator.requests) == 8


async def test_a_restarted_worker_asks_for_nothing_it_recorded(backend: Backend) -> None:
    first = backend.upload(4)
    orchestrator = RecordingOrchestrator()
    async with running(backend.worker(orchestrator)):
        await wait_until(lambda: orchestrator.requested(first), timeout=20, what="4 starts")
    # Stopped only after its positions were recorded (a stop drains what is in flight).

    async with running(backend.worker(orchestrator)):
        later = backend.upload(2)
        await wait_until(lambda: orchestrator.requested(later), timeout=20, what="2 more")

    assert Counter(r.artifact_id for r in orchestrator.requests) == Counter(first + later)


async def test_two_workers_at_once_start_each_artifact_once(backend: Backend) -> None:
    orchestrator = RecordingOrchestrator()
    one, two = backend.worker(orchestrator), backend.worker(orchestrator)

    async with running(one), running(two):
        ids = backend.upload(10)
        await wait_until(lambda: orchestrator.requested(ids), timeout=30, what="10 starts")
        last = backend.writer.recorder.max_notification_id()
        await wait_until(
            lambda: one.position == last and two.position == last,
            timeout=20,
            what="both see the last position recorded",
        )

    # Each worker may ask for every artifact (duplicates are harmless), one run each.
    assert sorted(orchestrator.started) == sorted(ids)
    assert max(Counter(r.artifact_id for r in orchestrator.requests).values()) <= 2


@pytest.mark.temporal
async def test_two_workers_on_real_temporal_leave_one_run_per_artifact(
    backend: Backend, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    # A task queue no Temporal worker polls: the runs stay open, which is enough to count.
    orchestrator = TemporalWorkflowOrchestrator(client, f"contract-{uuid.uuid4()}")
    one, two = backend.worker(orchestrator), backend.worker(orchestrator)

    async with running(one), running(two):
        ids = backend.upload(4)
        last = backend.writer.recorder.max_notification_id()
        await wait_until(
            lambda: one.position == last and two.position == last,
            timeout=30,
            what="both workers recorded the last position",
        )

    for artifact_id in ids:
        workflow_id = workflow_id_for(artifact_id)

        async def runs(workflow_id: str = workflow_id) -> int:
            return len([r async for r in client.list_workflows(f'WorkflowId = "{workflow_id}"')])

        # Temporal's list is eventually consistent; both workers are done starting by now.
        await wait_until(lambda: _positive(runs()), timeout=10, what=f"{workflow_id} listed")
        assert await runs() == 1
        await client.get_workflow_handle(workflow_id).terminate("contract test done")


async def _positive(count: Awaitable[int]) -> bool:
    return await count > 0
