"""The orchestrator's time bound and cancel, on a Temporal dev server (no worker needed)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from application.ports import ProcessingRequest
from domain.artifact import workflow_id_for
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator


def request() -> ProcessingRequest:
    return ProcessingRequest(
        artifact_id=uuid.uuid4(),
        storage_location="ab/cd",
        content_type="application/pdf",
        size=123,
        sha256="0" * 64,
    )


async def test_every_run_starts_with_the_execution_timeout(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    orchestrator = TemporalWorkflowOrchestrator(
        temporal_dev_env.client, f"q-{uuid.uuid4()}", execution_timeout=timedelta(hours=2)
    )
    processing = request()

    assert await orchestrator.start_processing(processing)

    handle = temporal_dev_env.client.get_workflow_handle(workflow_id_for(processing.artifact_id))
    described = await handle.describe()
    timeout = described.raw_description.execution_config.workflow_execution_timeout
    assert timeout.ToTimedelta() == timedelta(hours=2)
    await handle.terminate()


async def test_cancelling_asks_the_open_run_to_stop_and_asking_again_is_harmless(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    orchestrator = TemporalWorkflowOrchestrator(temporal_dev_env.client, f"q-{uuid.uuid4()}")
    processing = request()
    assert await orchestrator.start_processing(processing)

    await orchestrator.cancel_processing(processing.artifact_id, 0)
    await orchestrator.cancel_processing(processing.artifact_id, 0)

    handle = temporal_dev_env.client.get_workflow_handle(workflow_id_for(processing.artifact_id))
    history = await handle.fetch_history()
    requested = [
        e
        for e in history.events
        if e.HasField("workflow_execution_cancel_requested_event_attributes")
    ]
    assert len(requested) >= 1
    await handle.terminate()


async def test_cancelling_a_closed_or_unknown_run_is_left_as_it_is(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    orchestrator = TemporalWorkflowOrchestrator(temporal_dev_env.client, f"q-{uuid.uuid4()}")
    closed = request()
    assert await orchestrator.start_processing(closed)
    handle = temporal_dev_env.client.get_workflow_handle(workflow_id_for(closed.artifact_id))
    await handle.terminate()

    await orchestrator.cancel_processing(closed.artifact_id, 0)
    await orchestrator.cancel_processing(uuid.uuid4(), 3)

    assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED
