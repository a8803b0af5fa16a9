"""Running ``ProcessArtifactWorkflow`` on a test server, shared by the tests and the recorder.

Each ``Harness`` has its own task queue, its own in-memory application, blob store and
summarizer, and the real activities over them; a test swaps any activity for a stand-in
registered under the same name.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.worker import Worker

from application.erasure import Eraser
from application.ports import ProcessingRequest
from domain.artifact import workflow_id_for
from infrastructure.processing.options import ProcessingOptions
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import ProcessingOutcome
from infrastructure.temporal.orchestrator import memo_for, priority_for, search_attributes_for
from infrastructure.temporal.worker import HEARTBEAT_THROTTLE
from infrastructure.temporal.workflows import ProcessArtifactWorkflow
from tests import corpus
from tests.fakes import FakeBlobStore, FakeSummarizer, InMemoryKeyStore, in_memory_artifacts

ProcessHandle = WorkflowHandle[ProcessArtifactWorkflow, ProcessingOutcome]

TEXT = "Temporal runs workflows durably.\nA workflow survives the crash of its worker.\n"


class Harness:
    def __init__(
        self,
        client: Client,
        *,
        summarizer: FakeSummarizer | None = None,
        options: ProcessingOptions | None = None,
    ) -> None:
        self.client = client
        self.task_queue = f"test-{uuid.uuid4()}"
        self.keys = InMemoryKeyStore()
        self.artifacts = in_memory_artifacts(self.keys)
        self.blobs = FakeBlobStore()
        self.summarizer = summarizer or FakeSummarizer()
        self.eraser = Eraser(self.artifacts, self.blobs, self.keys)
        self.activities = ArtifactActivities(
            self.artifacts, self.blobs, self.summarizer, options, eraser=self.eraser
        )

    def upload(self, content: bytes, filename: str = "upload.bin") -> ProcessingRequest:
        """Stores ``content`` and creates its artifact, as the API does."""
        blob = self.blobs.put(content)
        artifact_id = self.artifacts.create_artifact_once(
            idempotency_key=None,
            filename=filename,
            content_type="application/octet-stream",
            size=blob.size,
            sha256=blob.sha256,
            storage_location=blob.location,
        ).id
        return self.artifacts.processing_request_for(artifact_id, run=0)

    @asynccontextmanager
    async def worker(
        self,
        *,
        record_started: Callable[..., object] | None = None,
        inspect: Callable[..., object] | None = None,
        extract: Callable[..., object] | None = None,
        summarize: Callable[..., object] | None = None,
        record_result: Callable[..., object] | None = None,
        record_failure: Callable[..., object] | None = None,
        record_cancelled: Callable[..., object] | None = None,
    ) -> AsyncIterator[Worker]:
        """A running worker with the real activities, or the given stand-ins for them."""
        real = self.activities
        activities = [
            record_started or real.record_processing_started,
            inspect or real.inspect_artifact,
            extract or real.extract_content,
            summarize or real.summarize_text,
            record_result or real.record_processing_result,
            record_failure or real.record_processing_failure,
            record_cancelled or real.record_processing_cancelled,
        ]
        with ThreadPoolExecutor(max_workers=4) as executor:
            worker = Worker(
                self.client,
                task_queue=self.task_queue,
                workflows=[ProcessArtifactWorkflow],
                activities=activities,
                activity_executor=executor,
                max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
            )
            async with worker:
                yield worker

    async def start(self, request: ProcessingRequest) -> ProcessHandle:
        """Starts the run as the orchestrator does: its id, search attributes and memo."""
        return await self.client.start_workflow(
            ProcessArtifactWorkflow.run,
            request,
            id=workflow_id_for(request.artifact_id, request.run),
            task_queue=self.task_queue,
            search_attributes=search_attributes_for(request),
            memo=memo_for(request),
            priority=priority_for(request),
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


def activities_scheduled(history: WorkflowHistory) -> list[str]:
    """The names of the activities a run scheduled, in order."""
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def step_summaries(history: WorkflowHistory) -> list[str]:
    """What each scheduled activity says it does in the Temporal UI, in order."""
    return [
        json.loads(event.user_metadata.summary.data)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def _upload_text(harness: Harness, directory: Path) -> ProcessingRequest:
    return harness.upload(corpus.text_file(directory, TEXT, encoding="utf-8").read_bytes())


def _upload_pdf(harness: Harness, directory: Path) -> ProcessingRequest:
    return harness.upload(corpus.text_pdf(directory, 2).read_bytes(), filename="paper.pdf")


def _upload_an_archive(harness: Harness, directory: Path) -> ProcessingRequest:
    return harness.upload(corpus.zip_disguised_as_pdf(directory).read_bytes())


def _upload_then_lose_the_blob(harness: Harness, directory: Path) -> ProcessingRequest:
    request = _upload_text(harness, directory)
    del harness.blobs.blobs[request.storage_location]
    return request


# The runs whose histories are kept in HISTORIES and replayed by the tests; re-record them
# with `uv run --no-sync python -m tests.workflow.record_histories`.
HISTORIES = Path(__file__).parent / "histories"
RECORDED_SCENARIOS: dict[str, Callable[[Harness, Path], ProcessingRequest]] = {
    "processed_text": _upload_text,
    "processed_pdf": _upload_pdf,
    "failed_unsupported_type": _upload_an_archive,
    "failed_blob_missing": _upload_then_lose_the_blob,
}


async def run_scenario(client: Client, name: str) -> WorkflowHistory:
    """Runs a recorded scenario with the real activities and returns its history."""
    harness = Harness(client)
    try:
        with tempfile.TemporaryDirectory() as directory:
            request = RECORDED_SCENARIOS[name](harness, Path(directory))
        async with harness.worker():
            handle = await harness.start(request)
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
        return await handle.fetch_history()
    finally:
        harness.close()
