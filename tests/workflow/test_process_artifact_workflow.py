"""ProcessArtifactWorkflow on Temporal's time-skipping test server.

Each test has its own task queue and workflow id (see ``Harness``). The real activities
run over the in-memory application, a fake blob store and a fake summarizer; where a
test needs a step to misbehave, a stand-in is registered under the activity's name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from application.ports import (
    ContentFacts,
    ProcessingRequest,
    SummaryUnavailable,
)
from domain.artifact import ArtifactStatus, workflow_id_for
from infrastructure.processing.options import ProcessingOptions
from infrastructure.processing.text import PAGE_END
from infrastructure.temporal.models import (
    ARTIFACT_ID,
    ARTIFACT_OUTCOME,
    EXTRACT_CONTENT,
    INSPECT_ARTIFACT,
    MIME_TYPE,
    RECORD_PROCESSING_FAILURE,
    RECORD_PROCESSING_RESULT,
    RECORD_PROCESSING_STARTED,
    SUMMARIZE_TEXT,
    Extraction,
    Inspection,
    ProcessingOutcome,
    SummaryReference,
    SummaryRequest,
)
from infrastructure.temporal.workflows import (
    EXTRACT_RETRY,
    SUMMARIZE_RETRY,
    ProcessArtifactWorkflow,
)
from tests import corpus
from tests.fakes import FakeSummarizer
from tests.workflow.harness import (
    HISTORIES,
    RECORDED_SCENARIOS,
    TEXT,
    Harness,
    ProcessHandle,
    activities_scheduled,
    activity_attempts,
    run_scenario,
    step_summaries,
)

DEADLINE = 10.0  # seconds of wall time a wait for a stand-in may take


@pytest.fixture
def make_harness(time_skipping_env: WorkflowEnvironment) -> Iterator[Callable[..., Harness]]:
    """Builds harnesses (with another summarizer or other options), closing them after."""
    harnesses: list[Harness] = []

    def make(
        *, summarizer: FakeSummarizer | None = None, options: ProcessingOptions | None = None
    ) -> Harness:
        harnesses.append(Harness(time_skipping_env.client, summarizer=summarizer, options=options))
        return harnesses[-1]

    yield make
    for harness in harnesses:
        harness.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


async def failure_of(handle: ProcessHandle) -> ApplicationError:
    """The ApplicationError a run failed with."""
    with pytest.raises(WorkflowFailureError) as excinfo:
        await handle.result()
    cause = excinfo.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


def upload_text(harness: Harness, tmp_path: Path) -> ProcessingRequest:
    return harness.upload(corpus.text_file(tmp_path, TEXT, encoding="utf-8").read_bytes())


class FlakyExtract:
    """The real extraction, after failing its first ``failures`` attempts (all, if None)."""

    def __init__(self, harness: Harness, failures: int | None = None) -> None:
        self.real = harness.activities.extract_content
        self.failures = failures
        self.attempts: list[int] = []

    @activity.defn(name=EXTRACT_CONTENT)
    def extract(self, job: Extraction) -> ContentFacts:
        self.attempts.append(activity.info().attempt)
        if self.failures is None or len(self.attempts) <= self.failures:
            raise RuntimeError("the parser process crashed")
        return self.real(job)


class GatedInspect:
    """Holds the inspection open until the test lets it finish."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn(name=INSPECT_ARTIFACT)
    async def inspect(self, request: ProcessingRequest) -> Inspection:
        self.started.set()
        await self.release.wait()
        return Inspection(mime_type="text/plain", size=request.size, kind="text")


class GatedSummarize:
    """Holds the summary open until the test lets it finish (then stores one, as the real
    step does, and answers its reference)."""

    def __init__(self, harness: Harness) -> None:
        self.blobs = harness.blobs
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn(name=SUMMARIZE_TEXT)
    async def summarize(self, request: SummaryRequest) -> SummaryReference:
        self.started.set()
        await self.release.wait()
        stored = self.blobs.put(b"gated")
        return SummaryReference(
            location=stored.location, source="gate", model="gate", pipeline_version="t"
        )


# --- Runs that end processed -------------------------------------------------------------


async def test_a_text_file_is_processed_with_its_facts_and_a_summary(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)

    async with harness.worker():
        handle = await harness.start(request)
        outcome = await handle.result()
        history = await handle.fetch_history()

    assert outcome == ProcessingOutcome(
        artifact_id=request.artifact_id,
        run=0,
        status="processed",
        mime_type="text/plain",
        kind="text",
        page_count=None,
        char_count=len(TEXT),
        has_summary=True,
        language="en",
    )
    assert activities_scheduled(history) == [
        RECORD_PROCESSING_STARTED,
        INSPECT_ARTIFACT,
        EXTRACT_CONTENT,
        SUMMARIZE_TEXT,
        RECORD_PROCESSING_RESULT,
    ]
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSED
    assert artifact.workflow_id == workflow_id_for(request.artifact_id)
    assert (artifact.mime_type, artifact.kind, artifact.char_count) == (
        "text/plain",
        "text",
        len(TEXT),
    )
    assert artifact.details == {"encoding": "utf-8", "truncated": False}
    assert artifact.details["truncated"] is False  # still a bool after crossing Temporal
    [location] = artifact.text_locations
    assert harness.blobs.blobs[location].decode() == TEXT
    assert harness.summarizer.texts == [TEXT]
    assert artifact.summary == {
        "text": "Temporal runs workflows durably.",
        "source": "fake",
        "model": "first-line",
        "pipeline_version": "test",
    }
    assert [entry.type for entry in harness.artifacts.history(request.artifact_id)] == [
        "ArtifactCreated",
        "ProcessingStarted",
        "ArtifactProcessed",
        "SummaryCandidateAdded",
    ]


async def test_a_pdf_is_processed_with_its_pages_text_and_a_summary(
    harness: Harness, tmp_path: Path
) -> None:
    request = harness.upload(corpus.text_pdf(tmp_path, 3).read_bytes(), filename="paper.pdf")
    pages = [corpus.page_text(number) for number in (1, 2, 3)]

    async with harness.worker():
        outcome = await (await harness.start(request)).result()

    assert (outcome.status, outcome.kind, outcome.page_count) == ("processed", "pdf", 3)
    assert outcome.has_summary
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert (artifact.mime_type, artifact.page_count) == ("application/pdf", 3)
    assert artifact.char_count == sum(len(page) + 1 for page in pages)
    text = b"".join(harness.blobs.blobs[loc] for loc in artifact.text_locations).decode()
    assert text.split(PAGE_END)[:-1] == pages
    assert harness.summarizer.texts == [text]
    assert artifact.summary is not None
    assert artifact.summary["text"] == "Page 1 of the corpus."


async def test_an_image_is_processed_with_its_facts_and_no_summary(
    harness: Harness, tmp_path: Path
) -> None:
    request = harness.upload(corpus.png_image(tmp_path, width=64, height=32).read_bytes())

    async with harness.worker():
        handle = await harness.start(request)
        outcome = await handle.result()
        history = await handle.fetch_history()

    assert (outcome.status, outcome.kind, outcome.has_summary) == ("processed", "image", False)
    assert SUMMARIZE_TEXT not in activities_scheduled(history)
    assert harness.summarizer.texts == []
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.mime_type == "image/png"
    assert artifact.details == {
        "width": 64,
        "height": 32,
        "format": "PNG",
        "mode": "RGB",
        "frames": 1,
    }
    assert artifact.text_locations == []
    assert artifact.summary is None
    # OCR finds nothing on a plain red rectangle: no text, and it says so.
    assert outcome.warnings == artifact.warnings == ["no_text"]


async def test_a_scanned_pdf_is_processed_with_the_text_ocr_read_and_a_summary(
    harness: Harness, tmp_path: Path
) -> None:
    scan = corpus.scanned_pdf(tmp_path, corpus.text_pdf(tmp_path, 2), dpi=200)
    request = harness.upload(scan.read_bytes(), filename="scan.pdf")

    async with harness.worker():
        outcome = await (await harness.start(request)).result()

    assert (outcome.status, outcome.page_count, outcome.warnings) == ("processed", 2, [])
    assert outcome.has_summary
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    text = b"".join(harness.blobs.blobs[loc] for loc in artifact.text_locations).decode()
    assert text.startswith("Page 1 of the corpus.\nIt mentions a caf")
    pages = json.loads(harness.blobs.blobs[artifact.pages_location or ""])
    assert [page["source"] for page in pages] == ["ocr", "ocr"]
    assert harness.summarizer.texts == [text]


async def test_a_scan_with_nothing_legible_ends_processed_with_no_text_and_no_summary(
    harness: Harness, tmp_path: Path
) -> None:
    request = harness.upload(corpus.blank_scan_pdf(tmp_path, noise=True).read_bytes())

    async with harness.worker():
        handle = await harness.start(request)
        outcome = await handle.result()
        history = await handle.fetch_history()

    assert (outcome.status, outcome.char_count, outcome.warnings) == ("processed", 0, ["no_text"])
    assert SUMMARIZE_TEXT not in activities_scheduled(history)
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert (artifact.status, artifact.warnings) == (ArtifactStatus.PROCESSED, ["no_text"])


async def test_an_empty_text_file_ends_processed_with_no_text_and_no_summary(
    harness: Harness, tmp_path: Path
) -> None:
    request = harness.upload(corpus.text_file(tmp_path, "\n\n", encoding="utf-8").read_bytes())

    async with harness.worker():
        handle = await harness.start(request)
        outcome = await handle.result()
        history = await handle.fetch_history()

    assert (outcome.status, outcome.char_count, outcome.has_summary) == ("processed", 0, False)
    assert (outcome.warnings, outcome.language) == (["no_text"], None)
    assert SUMMARIZE_TEXT not in activities_scheduled(history)
    assert harness.summarizer.texts == []
    # What the Temporal UI shows for the step that records the result.
    assert "no text found (no_text), so no summary" in step_summaries(history)[-1]
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert (artifact.status, artifact.warnings) == (ArtifactStatus.PROCESSED, ["no_text"])
    assert artifact.summary is None
    assert artifact.markdown_location is not None
    assert artifact.chunks_location is not None


async def test_a_result_with_text_records_its_structured_outputs(
    harness: Harness, tmp_path: Path
) -> None:
    request = harness.upload(corpus.text_pdf(tmp_path, 2).read_bytes(), filename="paper.pdf")

    async with harness.worker():
        await (await harness.start(request)).result()

    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.warnings == []
    markdown = harness.blobs.blobs[artifact.markdown_location or ""].decode()
    assert markdown.startswith("<!-- page 1 -->\n\nPage 1 of the corpus.")
    chunks = json.loads(harness.blobs.blobs[artifact.chunks_location or ""])
    assert [chunk["pages"] for chunk in chunks] == [[1, 2]]
    pages = json.loads(harness.blobs.blobs[artifact.pages_location or ""])
    assert [page["number"] for page in pages] == [1, 2]


async def test_a_summary_refused_for_good_still_ends_processed_without_one(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    rejected = SummaryUnavailable("invalid api key", retryable=False)
    harness = make_harness(summarizer=FakeSummarizer(failures=[rejected]))
    request = upload_text(harness, tmp_path)

    async with harness.worker():
        handle = await harness.start(request)
        outcome = await handle.result()
        history = await handle.fetch_history()

    assert (outcome.status, outcome.has_summary) == ("processed", False)
    assert activity_attempts(history, SUMMARIZE_TEXT) == [1]
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSED
    assert artifact.summary is None
    assert artifact.char_count == len(TEXT)


async def test_a_summary_that_keeps_being_unavailable_is_retried_then_left_out(
    make_harness: Callable[..., Harness], tmp_path: Path
) -> None:
    attempts = SUMMARIZE_RETRY.maximum_attempts
    busy = [SummaryUnavailable("overloaded", retryable=True) for _ in range(attempts)]
    harness = make_harness(summarizer=FakeSummarizer(failures=busy))
    request = upload_text(harness, tmp_path)

    async with harness.worker():
        outcome = await (await harness.start(request)).result()

    assert (outcome.status, outcome.has_summary) == ("processed", False)
    assert len(harness.summarizer.texts) == attempts > 1
    assert harness.artifacts.get_artifact(request.artifact_id).summary is None


async def test_a_reprocessing_run_runs_under_its_own_id_and_records_on_its_run(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)

    async with harness.worker():
        await (await harness.start(request)).result()
        run = harness.artifacts.request_reprocessing(request.artifact_id)
        again = harness.artifacts.processing_request_for(request.artifact_id, run=run)
        handle = await harness.start(again)
        outcome = await handle.result()

    assert handle.id == f"artifact-{request.artifact_id}-run-1"
    assert (outcome.run, outcome.status) == (1, "processed")
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert (artifact.run, artifact.status) == (1, ArtifactStatus.PROCESSED)
    assert artifact.workflow_id == handle.id
    assert artifact.summary is not None
    assert [entry.type for entry in harness.artifacts.history(request.artifact_id)][4:] == [
        "ReprocessingRequested",
        "ProcessingStarted",
        "ArtifactProcessed",
        "SummaryCandidateAdded",
    ]


# --- Runs that end failed ----------------------------------------------------------------


def _upload_an_archive(harness: Harness, tmp_path: Path) -> ProcessingRequest:
    return harness.upload(corpus.zip_disguised_as_pdf(tmp_path).read_bytes())


def _upload_a_truncated_pdf(harness: Harness, tmp_path: Path) -> ProcessingRequest:
    return harness.upload(corpus.truncated_pdf(tmp_path).read_bytes())


def _upload_an_encrypted_pdf(harness: Harness, tmp_path: Path) -> ProcessingRequest:
    return harness.upload(corpus.encrypted_pdf(tmp_path).read_bytes())


def _upload_then_lose_the_blob(harness: Harness, tmp_path: Path) -> ProcessingRequest:
    request = upload_text(harness, tmp_path)
    del harness.blobs.blobs[request.storage_location]
    return request


def _upload_then_change_the_blob(harness: Harness, tmp_path: Path) -> ProcessingRequest:
    request = upload_text(harness, tmp_path)
    harness.blobs.blobs[request.storage_location] = TEXT.encode()[:-1]
    return request


ONLY_PDF = ProcessingOptions(allowed_types=frozenset({"application/pdf"}))


@pytest.mark.parametrize(
    ("make_request", "options", "reason", "failing_activity"),
    [
        (_upload_an_archive, None, "unsupported_type", INSPECT_ARTIFACT),
        (upload_text, ONLY_PDF, "unsupported_type", INSPECT_ARTIFACT),
        (_upload_then_lose_the_blob, None, "blob_missing", INSPECT_ARTIFACT),
        (_upload_then_change_the_blob, None, "blob_corrupted", INSPECT_ARTIFACT),
        (_upload_a_truncated_pdf, None, "corrupt", EXTRACT_CONTENT),
        (_upload_an_encrypted_pdf, None, "encrypted", EXTRACT_CONTENT),
    ],
    ids=[
        "never-supported-type",
        "type-outside-allow-list",
        "missing-blob",
        "changed-blob",
        "corrupt-pdf",
        "encrypted-pdf",
    ],
)
async def test_a_permanent_problem_fails_the_run_after_one_attempt_and_is_recorded(
    make_harness: Callable[..., Harness],
    tmp_path: Path,
    make_request: Callable[[Harness, Path], ProcessingRequest],
    options: ProcessingOptions | None,
    reason: str,
    failing_activity: str,
) -> None:
    harness = make_harness(options=options)
    request = make_request(harness, tmp_path)

    async with harness.worker():
        handle = await harness.start(request)
        failure = await failure_of(handle)
        history = await handle.fetch_history()

    assert (failure.type, failure.non_retryable) == (reason, True)
    assert activity_attempts(history, failing_activity) == [1]
    assert activities_scheduled(history)[-2:] == [failing_activity, RECORD_PROCESSING_FAILURE]
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.FAILED
    assert artifact.failure_reason == reason
    assert artifact.failure_message == failure.message
    assert harness.summarizer.texts == []


async def test_an_extraction_that_keeps_failing_ends_as_retries_exhausted(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)
    extract = FlakyExtract(harness)

    async with harness.worker(extract=extract.extract):
        handle = await harness.start(request)
        failure = await failure_of(handle)
        history = await handle.fetch_history()

    assert EXTRACT_RETRY.maximum_attempts > 1
    assert extract.attempts == list(range(1, EXTRACT_RETRY.maximum_attempts + 1))
    assert activity_attempts(history, EXTRACT_CONTENT) == [EXTRACT_RETRY.maximum_attempts]
    assert failure.type == "retries_exhausted"
    assert "the parser process crashed" in failure.message
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.FAILED
    assert artifact.failure_reason == "retries_exhausted"


async def test_an_extraction_that_fails_once_is_retried_and_succeeds(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)
    extract = FlakyExtract(harness, failures=1)

    async with harness.worker(extract=extract.extract):
        outcome = await (await harness.start(request)).result()

    assert extract.attempts == [1, 2]
    assert (outcome.status, outcome.char_count) == ("processed", len(TEXT))
    assert harness.artifacts.get_artifact(request.artifact_id).status is ArtifactStatus.PROCESSED


# --- Where a run is ----------------------------------------------------------------------


async def test_the_current_step_can_be_asked_while_running_and_after(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)
    inspect, summarize = GatedInspect(), GatedSummarize(harness)

    async with harness.worker(inspect=inspect.inspect, summarize=summarize.summarize):
        handle = await harness.start(request)
        await asyncio.wait_for(inspect.started.wait(), DEADLINE)
        while_inspecting = await handle.query(ProcessArtifactWorkflow.current_step)
        inspect.release.set()
        await asyncio.wait_for(summarize.started.wait(), DEADLINE)
        while_summarizing = await handle.query(ProcessArtifactWorkflow.current_step)
        summarize.release.set()
        await handle.result()
        when_done = await handle.query(ProcessArtifactWorkflow.current_step)

    assert (while_inspecting, while_summarizing, when_done) == (
        "inspecting",
        "summarizing",
        "done",
    )


async def test_the_current_step_of_a_failed_run_is_failed(harness: Harness, tmp_path: Path) -> None:
    request = _upload_then_lose_the_blob(harness, tmp_path)

    async with harness.worker():
        handle = await harness.start(request)
        await failure_of(handle)
        step = await handle.query(ProcessArtifactWorkflow.current_step)

    assert step == "failed"


# --- Finding runs in the Temporal UI: search attributes, memo, activity summaries --------


async def test_a_processed_run_is_found_by_artifact_id_mime_type_and_outcome(
    harness: Harness, tmp_path: Path
) -> None:
    request = upload_text(harness, tmp_path)

    async with harness.worker():
        handle = await harness.start(request)
        await handle.result()
        described = await handle.describe()

    attributes = described.typed_search_attributes
    assert attributes.get(ARTIFACT_ID) == str(request.artifact_id)
    assert attributes.get(MIME_TYPE) == "text/plain"
    assert attributes.get(ARTIFACT_OUTCOME) == "processed"
    assert await described.memo() == {"size": request.size, "tenant": "default"}


async def test_a_failed_run_is_found_by_its_outcome(harness: Harness, tmp_path: Path) -> None:
    request = harness.upload(corpus.zip_disguised_as_pdf(tmp_path).read_bytes())

    async with harness.worker():
        handle = await harness.start(request)
        await failure_of(handle)
        described = await handle.describe()

    assert described.typed_search_attributes.get(ARTIFACT_OUTCOME) == "failed"


async def test_a_run_started_without_an_artifact_id_upserts_nothing_and_is_processed(
    harness: Harness, tmp_path: Path
) -> None:
    # As on a server where the attributes are not registered: the orchestrator then starts
    # runs without ArtifactId, and an upsert would fail the workflow task over and over.
    request = upload_text(harness, tmp_path)

    async with harness.worker():
        handle = await harness.client.start_workflow(
            ProcessArtifactWorkflow.run,
            request,
            id=workflow_id_for(request.artifact_id),
            task_queue=harness.task_queue,
        )
        outcome = await handle.result()
        described = await handle.describe()

    assert outcome.status == "processed"
    assert described.typed_search_attributes.get(MIME_TYPE) is None


async def test_each_activity_says_what_it_did_in_the_ui_naming_no_file(
    harness: Harness, tmp_path: Path
) -> None:
    request = harness.upload(corpus.text_pdf(tmp_path, 2).read_bytes(), filename="paper.pdf")

    async with harness.worker():
        handle = await harness.start(request)
        await handle.result()
        summaries = step_summaries(await handle.fetch_history())

    assert summaries[0] == "record that run 0 started"
    assert summaries[1] == f"verify and sniff {request.size} bytes"
    assert summaries[2] == "extract pdf content (application/pdf)"
    assert summaries[3].startswith("summarize ")
    assert summaries[4].startswith("record the result: ")


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


@pytest.mark.parametrize(
    ("scenario", "last_activity"),
    [
        ("processed_text", RECORD_PROCESSING_RESULT),
        ("processed_pdf", RECORD_PROCESSING_RESULT),
        ("failed_unsupported_type", RECORD_PROCESSING_FAILURE),
        ("failed_blob_missing", RECORD_PROCESSING_FAILURE),
    ],
)
def test_each_recorded_history_took_the_path_its_name_says(
    scenario: str, last_activity: str
) -> None:
    scheduled = activities_scheduled(recorded(scenario))

    assert scheduled[0] == RECORD_PROCESSING_STARTED
    assert scheduled[-1] == last_activity
    assert (SUMMARIZE_TEXT in scheduled) == scenario.startswith("processed")


@pytest.mark.parametrize("scenario", sorted(RECORDED_SCENARIOS))
async def test_a_recorded_history_replays_with_the_current_workflow(
    replayer: Replayer, scenario: str
) -> None:
    history = recorded(scenario)
    assert len(history.events) > 5

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None


@pytest.mark.parametrize(
    "path",
    sorted((HISTORIES / "before_search_attributes").glob("*.json")),
    ids=lambda path: path.stem,
)
async def test_a_run_recorded_before_search_attributes_still_replays(
    replayer: Replayer, path: Path
) -> None:
    # Runs in flight when the upserts were added: workflow.patched skips them on replay.
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None


@workflow.defn(name="ProcessArtifactWorkflow")
class ReorderedWorkflow:
    """An incompatible edit: inspects before recording that the run started."""

    @workflow.run
    async def run(self, request: ProcessingRequest) -> None:
        await workflow.execute_activity(
            INSPECT_ARTIFACT,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_replaying_a_recorded_history_catches_an_incompatible_change() -> None:
    # Unsandboxed: the stand-in workflow lives in this test module, which the sandbox
    # would otherwise re-import with all of its (non-deterministic) imports.
    replayer = Replayer(workflows=[ReorderedWorkflow], workflow_runner=UnsandboxedWorkflowRunner())

    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(recorded("processed_text"))
