"""Running ``ProcessArtifactWorkflow`` on a test server, shared by the tests and the recorder.

Each ``Harness`` has its own task queue, its own in-memory application and blob store,
and the real activities over them; a test swaps any activity for a stand-in registered
under the same name.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.worker import Worker

from application.ports import ProcessingRequest
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import ProcessingOutcome
from infrastructure.temporal.orchestrator import workflow_id_for
from infrastructure.temporal.workflows import ProcessArtifactWorkflow
from tests.fakes import FakeBlobStore, in_memory_artifacts

ProcessHandle = WorkflowHandle[ProcessArtifactWorkflow, ProcessingOutcome]

# The start of a real PDF: libmagic knows it by its header.
PDF = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)


class Harness:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.task_queue = f"test-{uuid.uuid4()}"
        self.artifacts = in_memory_artifacts()
        self.blobs = FakeBlobStore()
        self.activities = ArtifactActivities(self.artifacts, self.blobs)

    def upload(self, content: bytes, filename: str = "upload.pdf") -> ProcessingRequest:
        """Stores ``content`` and creates its artifact, as the API does."""
        blob = self.blobs.put(content)
        artifact_id = self.artifacts.create_artifact(
            filename=filename,
            content_type="application/octet-stream",
            size=blob.size,
            sha256=blob.sha256,
            storage_location=blob.location,
        )
        return ProcessingRequest(
            artifact_id=artifact_id,
            storage_location=blob.location,
            filename=filename,
            content_type="application/octet-stream",
            size=blob.size,
            sha256=blob.sha256,
        )

    @asynccontextmanager
    async def worker(
        self,
        *,
        inspect: Callable[..., object] | None = None,
        record_result: Callable[..., object] | None = None,
        record_failure: Callable[..., object] | None = None,
    ) -> AsyncIterator[Worker]:
        """A running worker with the real activities, or the given stand-ins for them."""
        activities = [
            inspect or self.activities.inspect_artifact,
            record_result or self.activities.record_processing_result,
            record_failure or self.activities.record_processing_failure,
        ]
        with ThreadPoolExecutor(max_workers=4) as executor:
            worker = Worker(
                self.client,
                task_queue=self.task_queue,
                workflows=[ProcessArtifactWorkflow],
                activities=activities,
                activity_executor=executor,
            )
            async with worker:
                yield worker

    async def start(self, request: ProcessingRequest) -> ProcessHandle:
        return await self.client.start_workflow(
            ProcessArtifactWorkflow.run,
            request,
            id=workflow_id_for(request.artifact_id),
            task_queue=self.task_queue,
        )

    def close(self) -> None:
        self.artifacts.close()


def activity_attempts(history: WorkflowHistory, activity_name: str) -> list[int]:
    """The attempt number each scheduled ``activity_name`` finally ran as.

    Temporal writes an activity's started event only once it ends, carrying the number
    of the attempt that ended it; earlier, retried attempts leave no event of their own.
    """
    scheduled = {
        event.event_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity_name
    }
    return [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and event.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]


def _upload_pdf(harness: Harness) -> ProcessingRequest:
    return harness.upload(PDF)


def _upload_then_lose_the_blob(harness: Harness) -> ProcessingRequest:
    request = harness.upload(PDF)
    del harness.blobs.blobs[request.storage_location]
    return request


# The runs whose histories are kept in HISTORIES and replayed by the tests; re-record them
# with `uv run --no-sync python -m tests.workflow.record_histories`.
HISTORIES = Path(__file__).parent / "histories"
RECORDED_SCENARIOS: dict[str, Callable[[Harness], ProcessingRequest]] = {
    "processed": _upload_pdf,
    "failed_blob_missing": _upload_then_lose_the_blob,
}


async def run_scenario(client: Client, name: str) -> WorkflowHistory:
    """Runs a recorded scenario with the real activities and returns its history."""
    harness = Harness(client)
    try:
        request = RECORDED_SCENARIOS[name](harness)
        async with harness.worker():
            handle = await harness.start(request)
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
        return await handle.fetch_history()
    finally:
        harness.close()
