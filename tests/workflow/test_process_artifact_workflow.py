"""ProcessArtifactWorkflow on Temporal's time-skipping test server.

Each test has its own task queue and workflow id (see ``Harness``). The real activities
run over the in-memory application and a fake blob store; where a test needs a step to
misbehave, a stand-in is registered under the activity's name instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from application.ports import ProcessingRequest
from domain.artifact import ArtifactStatus
from infrastructure.temporal.models import (
    INSPECT_ARTIFACT,
    RECORD_PROCESSING_RESULT,
    Inspection,
    ProcessingOutcome,
    ProcessingResult,
)
from infrastructure.temporal.workflows import INSPECT_RETRY, ProcessArtifactWorkflow
from tests.workflow.harness import (
    HISTORIES,
    PDF,
    RECORDED_SCENARIOS,
    Harness,
    ProcessHandle,
    activity_attempts,
    run_scenario,
)

DEADLINE = 10.0  # seconds of wall time a wait for a stand-in may take


@pytest.fixture
def harness(time_skipping_env: WorkflowEnvironment) -> Iterator[Harness]:
    harness = Harness(time_skipping_env.client)
    yield harness
    harness.close()


async def failure_of(handle: ProcessHandle) -> ApplicationError:
    """The ApplicationError a run failed with."""
    with pytest.raises(WorkflowFailureError) as excinfo:
        await handle.result()
    cause = excinfo.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


class FlakyInspect:
    """Fails its first ``failures`` attempts with a retryable error (all, if None)."""

    def __init__(self, failures: int | None = None) -> None:
        self.failures = failures
        self.attempts: list[int] = []

    @activity.defn(name=INSPECT_ARTIFACT)
    async def inspect(self, request: ProcessingRequest) -> Inspection:
        self.attempts.append(activity.info().attempt)
        if self.failures is None or len(self.attempts) <= self.failures:
            raise RuntimeError("the disk hiccupped")
        return Inspection(mime_type="text/plain", size=request.size)


class GatedInspect:
    """Holds the inspection open until the test lets it finish."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn(name=INSPECT_ARTIFACT)
    async def inspect(self, request: ProcessingRequest) -> Inspection:
        self.started.set()
        await self.release.wait()
        return Inspection(mime_type="application/pdf", size=request.size)


async def test_a_stored_pdf_is_processed_and_recorded(harness: Harness) -> None:
    request = harness.upload(PDF)

    async with harness.worker():
        outcome = await (await harness.start(request)).result()

    assert outcome == ProcessingOutcome(
        artifact_id=request.artifact_id, status="processed", mime_type="application/pdf"
    )
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSED
    assert artifact.mime_type == "application/pdf"


async def test_a_missing_blob_fails_the_run_after_one_attempt_and_is_recorded(
    harness: Harness,
) -> None:
    request = harness.upload(PDF)
    del harness.blobs.blobs[request.storage_location]

    async with harness.worker():
        handle = await harness.start(request)
        failure = await failure_of(handle)
        history = await handle.fetch_history()

    assert failure.type == "blob_missing"
    assert failure.non_retryable
    assert activity_attempts(history, INSPECT_ARTIFACT) == [1]
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.FAILED
    assert artifact.failure_reason == "blob_missing"
    assert request.storage_location in (artifact.failure_message or "")


async def test_a_corrupted_blob_fails_the_run_and_is_recorded(harness: Harness) -> None:
    request = harness.upload(PDF)
    harness.blobs.blobs[request.storage_location] = PDF[:-1]

    async with harness.worker():
        failure = await failure_of(await harness.start(request))

    assert failure.type == "blob_corrupted"
    assert harness.artifacts.get_artifact(request.artifact_id).failure_reason == "blob_corrupted"


async def test_an_inspection_that_keeps_failing_ends_as_retries_exhausted(
    harness: Harness,
) -> None:
    request = harness.upload(PDF)
    inspect = FlakyInspect()

    async with harness.worker(inspect=inspect.inspect):
        handle = await harness.start(request)
        failure = await failure_of(handle)
        history = await handle.fetch_history()

    assert INSPECT_RETRY.maximum_attempts > 1
    assert inspect.attempts == list(range(1, INSPECT_RETRY.maximum_attempts + 1))
    assert activity_attempts(history, INSPECT_ARTIFACT) == [INSPECT_RETRY.maximum_attempts]
    assert failure.type == "retries_exhausted"
    assert "the disk hiccupped" in failure.message
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.FAILED
    assert artifact.failure_reason == "retries_exhausted"


async def test_an_inspection_that_fails_once_is_retried_and_succeeds(harness: Harness) -> None:
    request = harness.upload(PDF)
    inspect = FlakyInspect(failures=1)

    async with harness.worker(inspect=inspect.inspect):
        outcome = await (await harness.start(request)).result()

    assert inspect.attempts == [1, 2]
    assert outcome.status == "processed"
    assert harness.artifacts.get_artifact(request.artifact_id).mime_type == "text/plain"


async def test_the_current_step_can_be_asked_while_running_and_after(harness: Harness) -> None:
    request = harness.upload(PDF)
    inspect = GatedInspect()

    async with harness.worker(inspect=inspect.inspect):
        handle = await harness.start(request)
        await asyncio.wait_for(inspect.started.wait(), DEADLINE)
        while_inspecting = await handle.query(ProcessArtifactWorkflow.current_step)
        inspect.release.set()
        await handle.result()
        when_done = await handle.query(ProcessArtifactWorkflow.current_step)

    assert while_inspecting == "inspecting"
    assert when_done == "done"


async def test_the_current_step_of_a_failed_run_is_failed(harness: Harness) -> None:
    request = harness.upload(PDF)
    harness.blobs.blobs.clear()

    async with harness.worker():
        handle = await harness.start(request)
        await failure_of(handle)
        step = await handle.query(ProcessArtifactWorkflow.current_step)

    assert step == "failed"


# --- Determinism: replaying histories with the current workflow code -------------------


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    return Replayer(workflows=[ProcessArtifactWorkflow])


@pytest.mark.parametrize("scenario", sorted(RECORDED_SCENARIOS))
async def test_a_fresh_run_replays_deterministically(
    time_skipping_env: WorkflowEnvironment, replayer: Replayer, scenario: str
) -> None:
    history = await run_scenario(time_skipping_env.client, scenario)

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None


def recorded(scenario: str) -> WorkflowHistory:
    path = HISTORIES / f"{scenario}.json"
    return WorkflowHistory.from_json(scenario, path.read_text())


def test_every_recorded_scenario_has_a_saved_history() -> None:
    saved = {path.stem for path in HISTORIES.glob("*.json")}

    assert saved == set(RECORDED_SCENARIOS), (
        "re-record with `uv run --no-sync python -m tests.workflow.record_histories`"
    )


@pytest.mark.parametrize("scenario", sorted(RECORDED_SCENARIOS))
async def test_a_recorded_history_replays_with_the_current_workflow(
    replayer: Replayer, scenario: str
) -> None:
    history = recorded(scenario)
    assert len(history.events) > 5

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None


@workflow.defn(name="ProcessArtifactWorkflow")
class ReorderedWorkflow:
    """An incompatible edit: records a result before inspecting anything."""

    @workflow.run
    async def run(self, request: ProcessingRequest) -> None:
        await workflow.execute_activity(
            RECORD_PROCESSING_RESULT,
            ProcessingResult(artifact_id=request.artifact_id, mime_type="text/plain"),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_replaying_a_recorded_history_catches_an_incompatible_change() -> None:
    # Unsandboxed: the stand-in workflow lives in this test module, which the sandbox
    # would otherwise re-import with all of its (non-deterministic) imports.
    replayer = Replayer(workflows=[ReorderedWorkflow], workflow_runner=UnsandboxedWorkflowRunner())

    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(recorded("processed"))
