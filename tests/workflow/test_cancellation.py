"""Cancelling a run: it stops the step in hand, records ``cancelled`` and ends cancelled;
a parser killed from outside on every attempt is recorded as ``parser_killed``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from application.ports import ContentFacts, ProcessingRequest
from domain.artifact import ArtifactStatus
from infrastructure.temporal.models import (
    EXTRACT_CONTENT,
    RECORD_PROCESSING_CANCELLED,
    RECORD_PROCESSING_RESULT,
    Extraction,
    ProcessingResult,
)
from infrastructure.temporal.workflows import EXTRACT_RETRY, ProcessArtifactWorkflow
from tests import corpus
from tests.workflow.harness import TEXT, Harness, ProcessHandle, activities_scheduled

DEADLINE = 10.0  # seconds of wall time a wait for a stand-in may take


@pytest.fixture
def harness(time_skipping_env: WorkflowEnvironment) -> Iterator[Harness]:
    harness = Harness(time_skipping_env.client)
    yield harness
    harness.close()


def upload_text(harness: Harness, tmp_path: Path) -> ProcessingRequest:
    return harness.upload(corpus.text_file(tmp_path, TEXT, encoding="utf-8").read_bytes())


class EndlessExtract:
    """An extraction that heartbeats until it is cancelled, as the PDF parser's does."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()

    @activity.defn(name=EXTRACT_CONTENT)
    async def extract(self, job: Extraction) -> ContentFacts:
        self.started.set()
        try:
            while True:
                activity.heartbeat()
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            self.stopped.set()
            raise


class KilledExtract:
    """An extraction whose parser is killed from outside on every attempt."""

    def __init__(self) -> None:
        self.attempts: list[int] = []

    @activity.defn(name=EXTRACT_CONTENT)
    def extract(self, job: Extraction) -> ContentFacts:
        self.attempts.append(activity.info().attempt)
        raise ApplicationError("the parser was ended by SIGKILL", type="parser_killed")


class GatedResult:
    """Records the result once the test lets it, so a cancel can arrive meanwhile."""

    def __init__(self, harness: Harness) -> None:
        self.real = harness.activities.record_processing_result
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn(name=RECORD_PROCESSING_RESULT)
    async def record(self, result: ProcessingResult) -> None:
        self.started.set()
        await self.release.wait()
        await asyncio.to_thread(self.real, result)


async def cancelled(handle: ProcessHandle) -> None:
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()
    assert isinstance(ended.value.cause, CancelledError)


async def test_a_run_cancelled_mid_extraction_stops_it_and_records_cancelled(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)
    extract = EndlessExtract()

    async with harness.worker(extract=extract.extract):
        handle = await harness.start(request)
        await asyncio.wait_for(extract.started.wait(), DEADLINE)
        await handle.cancel()
        await cancelled(handle)
        step = await handle.query(ProcessArtifactWorkflow.current_step)
        history = await handle.fetch_history()

    # The step was waited for until it stopped, then the cancellation recorded.
    assert extract.stopped.is_set()
    assert activities_scheduled(history)[-1] == RECORD_PROCESSING_CANCELLED
    assert step == "cancelled"
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert (artifact.status, artifact.failure_reason) == (ArtifactStatus.CANCELLED, "cancelled")


async def test_a_run_cancelled_before_it_started_records_cancelled(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)
    handle = await harness.start(request)  # no worker yet: nothing of it has run
    await handle.cancel()

    async with harness.worker():
        await cancelled(handle)

    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.CANCELLED


async def test_a_cancel_that_arrives_while_the_result_is_recorded_leaves_the_result(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)
    record = GatedResult(harness)

    async with harness.worker(record_result=record.record):
        handle = await harness.start(request)
        await asyncio.wait_for(record.started.wait(), DEADLINE)
        await handle.cancel()
        record.release.set()
        outcome = await handle.result()

    assert outcome.status == "processed"
    assert harness.artifacts.get_artifact(request.artifact_id).status is ArtifactStatus.PROCESSED


async def test_a_parser_killed_on_every_attempt_is_recorded_as_parser_killed(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)
    extract = KilledExtract()

    async with harness.worker(extract=extract.extract):
        handle = await harness.start(request)
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()

    # Retried like any crash, not blamed on the file at once.
    assert extract.attempts == list(range(1, (EXTRACT_RETRY.maximum_attempts or 0) + 1))
    assert isinstance(ended.value.cause, ApplicationError)
    assert ended.value.cause.type == "parser_killed"
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert (artifact.status, artifact.failure_reason) == (ArtifactStatus.FAILED, "parser_killed")


async def test_a_cancelled_run_replays_deterministically(harness: Harness, tmp_path: Path) -> None:
    request = upload_text(harness, tmp_path)
    extract = EndlessExtract()
    async with harness.worker(extract=extract.extract):
        handle = await harness.start(request)
        await asyncio.wait_for(extract.started.wait(), DEADLINE)
        await handle.cancel()
        await cancelled(handle)
        history = await handle.fetch_history()

    result = await Replayer(workflows=[ProcessArtifactWorkflow]).replay_workflow(history)

    assert result.replay_failure is None
