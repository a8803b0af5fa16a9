"""The orchestrator on a Temporal server with and without the search attributes registered."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from application.ports import ProcessingRequest
from domain.artifact import workflow_id_for
from infrastructure.temporal.models import ARTIFACT_ID
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator
from tests.support import binary


def request() -> ProcessingRequest:
    return ProcessingRequest(
        artifact_id=uuid.uuid4(),
        storage_location="ab/cd",
        content_type="application/pdf",
        size=123,
        sha256="0" * 64,
    )


@pytest.fixture
async def bare_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server nobody registered the search attributes on."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary("temporal"))
    yield env
    await env.shutdown()


async def test_a_run_starts_with_its_artifact_id_and_memo(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    orchestrator = TemporalWorkflowOrchestrator(temporal_dev_env.client, f"q-{uuid.uuid4()}")
    processing = request()

    assert await orchestrator.start_processing(processing)

    handle = temporal_dev_env.client.get_workflow_handle(workflow_id_for(processing.artifact_id))
    described = await handle.describe()
    assert described.typed_search_attributes.get(ARTIFACT_ID) == str(processing.artifact_id)
    assert await described.memo() == {"size": 123, "tenant": "default"}
    await handle.terminate()


async def test_without_the_attributes_registered_runs_start_all_the_same(
    bare_server: WorkflowEnvironment,
) -> None:
    orchestrator = TemporalWorkflowOrchestrator(bare_server.client, f"q-{uuid.uuid4()}")
    first, second = request(), request()

    with capture_logs() as logs:
        assert await orchestrator.start_processing(first)
        assert await orchestrator.start_processing(second)

    assert [line["event"] for line in logs].count("search_attributes_unregistered") == 1
    for processing in (first, second):
        handle = bare_server.client.get_workflow_handle(workflow_id_for(processing.artifact_id))
        described = await handle.describe()
        assert described.typed_search_attributes.get(ARTIFACT_ID) is None
