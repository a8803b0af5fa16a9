"""ArtifactActivities in an activity context, over the in-memory application and fakes.

The application is the real one on in-memory persistence; the blob store and the
summarizer are fakes at their ports. Sniffing (libmagic), decoding, image inspection and
PDF extraction (PDFium in a child process) are the real ones, fed files from
``tests.corpus``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import structlog
from structlog.testing import capture_logs
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from application.artifacts import ArtifactsApplication
from application.erasure import Eraser, Erasure, by_tenant
from application.ports import ContentFacts, ProcessingRequest, SummaryCandidate, SummaryUnavailable
from domain.artifact import ArtifactStatus
from infrastructure.processing.options import ProcessingOptions
from infrastructure.processing.pdf import PdfLimits
from infrastructure.processing.text import PAGE_END
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import (
    Extraction,
    Inspection,
    ProcessingCancellation,
    ProcessingFailure,
    ProcessingResult,
    ProcessingStart,
    SummaryReference,
    SummaryRequest,
)
from tests import corpus
from tests.fakes import FakeBlobStore, FakeSummarizer, InMemoryKeyStore, in_memory_artifacts

TEXT = b"Just some plain text.\nTwo lines of it.\n"
FACTS = ContentFacts(mime_type="text/plain", kind="text", page_count=None, char_count=len(TEXT))
SUMMARY = SummaryCandidate(text="Just text.", source="fake", model="m", pipeline_version="v1")


class World:
    """The activities with what they act on: an application, a blob store, a context."""

    def __init__(
        self, options: ProcessingOptions | None = None, summarizer: FakeSummarizer | None = None
    ) -> None:
        self.keys = InMemoryKeyStore()
        self.artifacts: ArtifactsApplication = in_memory_artifacts(self.keys)
        self.blobs = FakeBlobStore()
        self.summarizer = summarizer or FakeSummarizer()
        self.eraser = Eraser(self.artifacts, self.blobs, self.keys)
        self.activities = ArtifactActivities(
            self.artifacts, self.blobs, self.summarizer, options, eraser=self.eraser
        )
        self.heartbeats: list[Any] = []
        self.env = ActivityEnvironment()
        self.env.on_heartbeat = lambda *details: self.heartbeats.extend(details)

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

    def inspect(self, request: ProcessingRequest) -> Inspection:
        return self.env.run(self.activities.inspect_artifact, request)

    def extract(self, request: ProcessingRequest) -> ContentFacts:
        """Inspects the upload, then extracts its content as the inspection says."""
        inspection = self.inspect(request)
        self.heartbeats.clear()
        return self.env.run(
            self.activities.extract_content,
            Extraction(
                artifact_id=request.artifact_id,
                storage_location=request.storage_location,
                mime_type=inspection.mime_type,
                kind=inspection.kind,
            ),
        )

    def summarize(self, locations: list[str]) -> SummaryCandidate:
        """The summary's words, as runs that recorded them in their history got them."""
        summary = self.env.run(
            self.activities.summarize_text,
            SummaryRequest(artifact_id=uuid4(), text_locations=locations),
        )
        assert isinstance(summary, SummaryCandidate)
        return summary

    def record_started(self, artifact_id: UUID, run: int = 0) -> None:
        self.env.run(
            self.activities.record_processing_started,
            ProcessingStart(artifact_id=artifact_id, run=run, workflow_id=f"wf-{run}"),
        )

    def record_result(
        self,
        artifact_id: UUID,
        facts: ContentFacts = FACTS,
        summary: SummaryCandidate | None = None,
        run: int = 0,
    ) -> None:
        self.env.run(
            self.activities.record_processing_result,
            ProcessingResult(artifact_id=artifact_id, run=run, facts=facts, summary=summary),
        )

    def record_failure(
        self, artifact_id: UUID, reason: str, message: str = "it broke", run: int = 0
    ) -> None:
        self.env.run(
            self.activities.record_processing_failure,
            ProcessingFailure(artifact_id=artifact_id, run=run, reason=reason, message=message),
        )

    def text_at(self, locations: list[str]) -> str:
        return b"".join(self.blobs.blobs[location] for location in locations).decode("utf-8")

    def stored_event_types(self, artifact_id: UUID) -> list[str]:
        return [entry.type for entry in self.artifacts.history(artifact_id)]


@pytest.fixture
def world() -> Iterator[World]:
    world = World()
    yield world
    world.artifacts.close()


@pytest.fixture
def make_world() -> Iterator[Callable[..., World]]:
    """Builds worlds with other options or another summarizer."""
    worlds: list[World] = []

    def make(
        *, options: ProcessingOptions | None = None, summarizer: FakeSummarizer | None = None
    ) -> World:
        worlds.append(World(options, summarizer))
        return worlds[-1]

    yield make
    for made in worlds:
        made.artifacts.close()


def permanent_failure_of(excinfo: pytest.ExceptionInfo[ApplicationError]) -> tuple[str, bool]:
    return excinfo.value.type or "", excinfo.value.non_retryable


# --- inspect_artifact ------------------------------------------------------------------


def test_inspecting_a_pdf_verifies_it_and_sniffs_its_mime_type(
    world: World, tmp_path: Path
) -> None:
    pdf = corpus.text_pdf(tmp_path, 1).read_bytes()
    request = world.upload(pdf, filename="paper.txt")

    inspection = world.inspect(request)

    assert inspection == Inspection(mime_type="application/pdf", size=len(pdf), kind="pdf")


def test_inspecting_plain_text_sniffs_text_plain(world: World) -> None:
    request = world.upload(TEXT, filename="notes.pdf")

    assert world.inspect(request) == Inspection(mime_type="text/plain", size=len(TEXT), kind="text")


def test_inspecting_an_image_routes_it_to_image_extraction(world: World, tmp_path: Path) -> None:
    png = corpus.png_image(tmp_path).read_bytes()

    inspection = world.inspect(world.upload(png))

    assert (inspection.mime_type, inspection.kind) == ("image/png", "image")


def test_inspecting_reports_progress_by_heartbeat(world: World) -> None:
    world.inspect(world.upload(TEXT))

    assert world.heartbeats == [len(TEXT)]


def test_a_type_the_service_never_processes_fails_permanently_as_unsupported_type(
    world: World, tmp_path: Path
) -> None:
    archive = corpus.zip_disguised_as_pdf(tmp_path).read_bytes()

    with pytest.raises(ApplicationError) as excinfo:
        world.inspect(world.upload(archive, filename="archive.pdf"))

    assert permanent_failure_of(excinfo) == ("unsupported_type", True)
    assert "application/zip" in excinfo.value.message


def test_a_type_outside_the_deployments_allow_list_fails_permanently_as_unsupported_type(
    make_world: Callable[..., World],
) -> None:
    world = make_world(options=ProcessingOptions(allowed_types=frozenset({"application/pdf"})))

    with pytest.raises(ApplicationError) as excinfo:
        world.inspect(world.upload(TEXT))

    assert permanent_failure_of(excinfo) == ("unsupported_type", True)
    assert "text/plain" in excinfo.value.message


def test_inspecting_a_missing_blob_fails_permanently_as_blob_missing(world: World) -> None:
    request = world.upload(TEXT)
    world.blobs.blobs.clear()

    with pytest.raises(ApplicationError) as excinfo:
        world.inspect(request)

    assert permanent_failure_of(excinfo) == ("blob_missing", True)


def test_a_blob_of_another_size_fails_permanently_as_blob_corrupted(world: World) -> None:
    request = world.upload(TEXT)
    world.blobs.blobs[request.storage_location] = TEXT + b"appended later"

    with pytest.raises(ApplicationError) as excinfo:
        world.inspect(request)

    assert permanent_failure_of(excinfo) == ("blob_corrupted", True)
    assert f"expected {len(TEXT)} bytes" in excinfo.value.message


def test_a_blob_with_another_sha256_fails_permanently_as_blob_corrupted(world: World) -> None:
    request = world.upload(TEXT)
    flipped = bytes([TEXT[0] ^ 0x01]) + TEXT[1:]
    world.blobs.blobs[request.storage_location] = flipped

    with pytest.raises(ApplicationError) as excinfo:
        world.inspect(request)

    assert permanent_failure_of(excinfo) == ("blob_corrupted", True)
    assert hashlib.sha256(flipped).hexdigest() in excinfo.value.message


# --- extract_content -------------------------------------------------------------------


def test_utf8_text_is_stored_as_a_text_blob_and_referenced(world: World, tmp_path: Path) -> None:
    text = "Grüße aus Köln \u2013 naïve café, 東京.\nSecond line.\n"
    request = world.upload(corpus.text_file(tmp_path, text, encoding="utf-8").read_bytes())

    facts = world.extract(request)

    assert facts == ContentFacts(
        mime_type="text/plain",
        kind="text",
        page_count=None,
        char_count=len(text),
        text_locations=facts.text_locations,
        details={"encoding": "utf-8", "truncated": False},
        markdown_location=facts.markdown_location,
        chunks_location=facts.chunks_location,
        language=facts.language,
    )
    [location] = facts.text_locations
    assert location != request.storage_location
    assert world.text_at(facts.text_locations) == text
    assert world.text_at([facts.markdown_location or ""]) == text
    [chunk] = json.loads(world.text_at([facts.chunks_location or ""]))
    assert chunk == {
        "index": 0,
        "text": text.strip(),
        "headings": [],
        "pages": None,
        "chars": len(text.strip()),
    }


def test_text_is_stored_paragraph_by_paragraph_with_its_language(
    world: World, tmp_path: Path
) -> None:
    text = (
        "Temporal records every step of a workflow in its history.\n"
        "A worker that crashes is replaced, and the workflow goes on.\n\n"
        "Activities are retried until they succeed or their retries run out.\n"
    )
    request = world.upload(corpus.text_file(tmp_path, text, encoding="utf-8").read_bytes())

    facts = world.extract(request)

    assert world.text_at(facts.text_locations) == text
    assert facts.language == "en"
    assert facts.warnings == []


def test_latin1_text_is_detected_and_stored_as_utf8(world: World, tmp_path: Path) -> None:
    text = "Grüße aus Köln. Die Mädchen gehen über die Straße.\n"
    request = world.upload(corpus.text_file(tmp_path, text, encoding="latin-1").read_bytes())

    facts = world.extract(request)

    # The Encoding Standard reads latin-1 as windows-1252, its superset.
    assert facts.details == {"encoding": "cp1252", "truncated": False}
    assert facts.char_count == len(text)
    assert world.text_at(facts.text_locations) == text


def test_text_over_the_bound_is_cut_and_marked_truncated(
    make_world: Callable[..., World],
) -> None:
    world = make_world(options=ProcessingOptions(text_max_bytes=10))

    facts = world.extract(world.upload(TEXT))

    assert facts.details["truncated"] is True
    assert facts.warnings == ["truncated"]
    # An unpaged document's text ends with a line break.
    assert world.text_at(facts.text_locations) == TEXT[:10].decode() + "\n"
    assert facts.char_count == 11


def test_an_empty_text_file_is_processed_with_no_text_and_no_text_blob(
    world: World, tmp_path: Path
) -> None:
    request = world.upload(b"\n  \n")

    facts = world.extract(request)

    assert (facts.char_count, facts.text_locations, facts.warnings) == (0, [], ["no_text"])
    assert facts.language is None
    assert json.loads(world.text_at([facts.chunks_location or ""])) == []


def test_a_markdown_file_keeps_its_headings_lists_and_tables(world: World, tmp_path: Path) -> None:
    markdown = "# Title\n\nSome text.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    request = world.upload(markdown.encode())
    inspection = world.inspect(request)
    # libmagic calls Markdown text/plain; the type a newer magic database reports is tried.
    job = Extraction(
        artifact_id=request.artifact_id,
        storage_location=request.storage_location,
        mime_type="text/markdown",
        kind=inspection.kind,
    )

    facts = world.env.run(world.activities.extract_content, job)

    assert world.text_at([facts.markdown_location or ""]) == markdown


def test_an_image_with_nothing_legible_gives_its_facts_and_warns_of_no_text(
    world: World, tmp_path: Path
) -> None:
    # A plain red rectangle: OCR finds nothing on it.
    request = world.upload(corpus.png_image(tmp_path, width=64, height=32).read_bytes())

    facts = world.extract(request)

    assert facts == ContentFacts(
        mime_type="image/png",
        kind="image",
        page_count=1,
        char_count=0,
        text_locations=[],
        details={"width": 64, "height": 32, "format": "PNG", "mode": "RGB", "frames": 1},
        markdown_location=facts.markdown_location,
        chunks_location=facts.chunks_location,
        pages_location=facts.pages_location,
        warnings=["no_text"],
    )
    assert json.loads(world.text_at([facts.pages_location or ""])) == [
        {"number": 1, "source": "none", "confidence": None, "chars": 0}
    ]
    assert world.text_at([facts.markdown_location or ""]) == "<!-- page 1 -->\n"


def test_a_damaged_image_fails_permanently_as_corrupt(world: World, tmp_path: Path) -> None:
    request = world.upload(corpus.truncated_png(tmp_path).read_bytes())
    blobs_before = set(world.blobs.blobs)

    with pytest.raises(ApplicationError) as excinfo:
        world.extract(request)

    assert permanent_failure_of(excinfo) == ("corrupt", True)
    assert set(world.blobs.blobs) == blobs_before


def test_a_pdf_has_its_pages_stored_batch_by_batch_with_heartbeats(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(options=ProcessingOptions(pdf=PdfLimits(page_batch=2)))
    request = world.upload(corpus.text_pdf(tmp_path, 3).read_bytes())
    blobs_before = set(world.blobs.blobs)

    facts = world.extract(request)

    pages = [corpus.page_text(number) for number in (1, 2, 3)]
    assert (facts.mime_type, facts.kind, facts.page_count) == ("application/pdf", "pdf", 3)
    assert facts.char_count == sum(len(page) + 1 for page in pages)
    assert world.text_at(facts.text_locations).split(PAGE_END)[:-1] == pages
    assert json.loads(world.text_at([facts.pages_location or ""])) == [
        {"number": number, "source": "text", "confidence": None, "chars": len(page)}
        for number, page in enumerate(pages, start=1)
    ]
    assert "<!-- page 3 -->\n\nPage 3 of the corpus." in world.text_at(
        [facts.markdown_location or ""]
    )
    # One heartbeat per stored batch (and, on a slow machine, repeats while parsing).
    assert sorted({beat["next_page"] for beat in world.heartbeats} - {0}) == [2, 3]
    # The batches were kept for a retry only: what stays is the outputs.
    outputs = {*facts.text_locations, facts.markdown_location, facts.chunks_location}
    assert set(world.blobs.blobs) - blobs_before == outputs | {facts.pages_location}


class WorkerLost(Exception):
    """Stands for the worker dying mid-activity."""


def test_a_retried_pdf_extraction_resumes_after_its_last_heartbeat(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(options=ProcessingOptions(pdf=PdfLimits(page_batch=2)))
    request = world.upload(corpus.text_pdf(tmp_path, 5).read_bytes())
    whole = world.extract(request)

    def die_after_the_first_batch(*details: Any) -> None:
        world.heartbeats.extend(details)
        if any(isinstance(beat, dict) and beat["next_page"] == 2 for beat in details):
            raise WorkerLost

    world.env.on_heartbeat = die_after_the_first_batch
    with pytest.raises(WorkerLost):
        world.extract(request)
    [last] = [beat for beat in world.heartbeats if beat["next_page"] == 2]
    world.env.on_heartbeat = lambda *details: world.heartbeats.extend(details)
    world.env.info = dataclasses.replace(world.env.info, attempt=2, heartbeat_details=[last])
    world.heartbeats.clear()

    retried = world.extract(request)

    assert sorted({beat["next_page"] for beat in world.heartbeats} - {0}) == [4, 5]
    assert world.heartbeats[-1]["block_locations"][0] == last["block_locations"][0]
    assert (retried.page_count, retried.char_count) == (whole.page_count, whole.char_count)
    for outputs in ("text_locations", "markdown_location", "chunks_location", "pages_location"):
        locations = getattr(retried, outputs), getattr(whole, outputs)
        texts = [
            world.text_at(location if isinstance(location, list) else [location])
            for location in locations
        ]
        assert texts[0] == texts[1], outputs


def test_a_retry_whose_stored_batches_are_gone_starts_over(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(options=ProcessingOptions(pdf=PdfLimits(page_batch=2)))
    request = world.upload(corpus.text_pdf(tmp_path, 3).read_bytes())
    first = world.extract(request)
    # The first attempt finished (and deleted its batches) but its completion was lost.
    last = world.heartbeats[-1]
    world.env.info = dataclasses.replace(world.env.info, attempt=2, heartbeat_details=[last])

    retried = world.extract(request)

    assert world.text_at(retried.text_locations) == world.text_at(first.text_locations)
    assert sorted({beat["next_page"] for beat in world.heartbeats} - {0}) == [2, 3]


@pytest.mark.parametrize(
    ("make", "reason"),
    [(corpus.encrypted_pdf, "encrypted"), (corpus.truncated_pdf, "corrupt")],
    ids=["encrypted", "truncated"],
)
def test_a_hostile_pdf_fails_permanently_with_its_reason(
    world: World, tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    request = world.upload(make(tmp_path).read_bytes())
    blobs_before = set(world.blobs.blobs)

    with pytest.raises(ApplicationError) as excinfo:
        world.extract(request)

    assert permanent_failure_of(excinfo) == (reason, True)
    assert set(world.blobs.blobs) == blobs_before


def test_extracting_a_missing_blob_fails_permanently_as_blob_missing(world: World) -> None:
    with pytest.raises(ApplicationError) as excinfo:
        world.env.run(
            world.activities.extract_content,
            Extraction(
                artifact_id=uuid4(),
                storage_location="00/00000000000000000000000000000000",
                mime_type="text/plain",
                kind="text",
            ),
        )

    assert permanent_failure_of(excinfo) == ("blob_missing", True)


# --- summarize_text --------------------------------------------------------------------


def test_the_summary_is_the_summarizers_candidate_for_the_stored_text(world: World) -> None:
    locations = [world.blobs.put(b"First page.\n\x0c").location, world.blobs.put(b"Next.").location]

    summary = world.summarize(locations)

    assert world.summarizer.texts == ["First page.\n\x0cNext."]
    assert summary == FakeSummarizer.summary_of("First page.\n\x0cNext.")


def test_the_summarizer_reads_at_most_the_configured_number_of_characters(
    make_world: Callable[..., World],
) -> None:
    world = make_world(options=ProcessingOptions(summary_input_chars=5))

    world.summarize([world.blobs.put(b"0123456789").location])

    assert world.summarizer.texts == ["01234"]


class SlowSummarizer(FakeSummarizer):
    """Takes until the activity has heartbeated twice (or five seconds) to summarize."""

    def __init__(self, heartbeats: threading.Semaphore) -> None:
        super().__init__()
        self.heartbeats = heartbeats

    def summarize(self, text: str) -> SummaryCandidate:
        for _ in range(2):
            assert self.heartbeats.acquire(timeout=5), "no heartbeat while summarizing"
        return super().summarize(text)


def test_a_summary_heartbeats_while_the_summarizer_works(
    make_world: Callable[..., World],
) -> None:
    beats = threading.Semaphore(0)
    world = make_world(
        options=ProcessingOptions(heartbeat_every_seconds=0.01), summarizer=SlowSummarizer(beats)
    )
    world.env.on_heartbeat = lambda *details: beats.release()

    summary = world.summarize([world.blobs.put(b"Some text.").location])

    assert summary == FakeSummarizer.summary_of("Some text.")


def test_a_summary_worth_retrying_is_left_to_temporal_to_retry(
    make_world: Callable[..., World],
) -> None:
    busy = SummaryUnavailable("the endpoint is overloaded", retryable=True)
    world = make_world(summarizer=FakeSummarizer(failures=[busy]))

    with pytest.raises(SummaryUnavailable) as excinfo:
        world.summarize([world.blobs.put(b"Some text.").location])

    assert excinfo.value is busy


def test_a_refused_summary_fails_permanently_as_summary_unavailable(
    make_world: Callable[..., World],
) -> None:
    rejected = SummaryUnavailable("invalid api key", retryable=False)
    world = make_world(summarizer=FakeSummarizer(failures=[rejected]))

    with pytest.raises(ApplicationError) as excinfo:
        world.summarize([world.blobs.put(b"Some text.").location])

    assert permanent_failure_of(excinfo) == ("summary_unavailable", True)
    assert excinfo.value.message == "invalid api key"


# --- Writing back ----------------------------------------------------------------------


def test_recording_the_start_marks_the_artifact_processing_once(world: World) -> None:
    request = world.upload(TEXT)

    world.record_started(request.artifact_id)
    world.record_started(request.artifact_id)

    artifact = world.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSING
    assert world.stored_event_types(request.artifact_id) == [
        "ArtifactCreated",
        "ProcessingStarted",
    ]


def test_recording_a_result_stores_the_facts_and_summary_once(world: World) -> None:
    request = world.upload(TEXT)
    facts = dataclasses.replace(FACTS, text_locations=["7c/7c0123456789abcdef0123456789abcd"])

    world.record_result(request.artifact_id, facts, SUMMARY)
    world.record_result(request.artifact_id, facts, SUMMARY)

    artifact = world.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSED
    assert (artifact.mime_type, artifact.kind) == ("text/plain", "text")
    assert artifact.text_locations == facts.text_locations
    assert artifact.summary == dataclasses.asdict(SUMMARY)
    assert world.stored_event_types(request.artifact_id) == [
        "ArtifactCreated",
        "ArtifactProcessed",
        "SummaryCandidateAdded",
    ]


def test_recording_a_failure_marks_the_artifact_failed_once(world: World) -> None:
    request = world.upload(TEXT)

    world.record_failure(request.artifact_id, "blob_missing", "no blob")
    world.record_failure(request.artifact_id, "blob_missing", "no blob")

    artifact = world.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.FAILED
    assert (artifact.failure_reason, artifact.failure_message) == ("blob_missing", "no blob")
    assert world.stored_event_types(request.artifact_id) == [
        "ArtifactCreated",
        "ArtifactProcessingFailed",
    ]


def test_recording_for_an_unknown_artifact_fails_permanently(world: World) -> None:
    with pytest.raises(ApplicationError) as started_excinfo:
        world.record_started(uuid4())
    with pytest.raises(ApplicationError) as result_excinfo:
        world.record_result(uuid4())
    with pytest.raises(ApplicationError) as failure_excinfo:
        world.record_failure(uuid4(), "blob_missing")

    assert permanent_failure_of(started_excinfo) == ("artifact_not_found", True)
    assert permanent_failure_of(result_excinfo) == ("artifact_not_found", True)
    assert permanent_failure_of(failure_excinfo) == ("artifact_not_found", True)


def test_recording_a_conflicting_outcome_fails_permanently(world: World) -> None:
    request = world.upload(TEXT)
    world.record_result(request.artifact_id)

    with pytest.raises(ApplicationError) as failure_excinfo:
        world.record_failure(request.artifact_id, "timeout")
    with pytest.raises(ApplicationError) as result_excinfo:
        world.record_result(request.artifact_id, dataclasses.replace(FACTS, char_count=1))

    assert permanent_failure_of(failure_excinfo) == ("outcome_conflict", True)
    assert permanent_failure_of(result_excinfo) == ("outcome_conflict", True)
    assert world.artifacts.get_artifact(request.artifact_id).char_count == len(TEXT)
    assert len(world.stored_event_types(request.artifact_id)) == 2


def test_a_write_back_from_a_superseded_run_fails_permanently_as_stale_run(
    world: World,
) -> None:
    request = world.upload(TEXT)
    world.record_result(request.artifact_id)
    world.artifacts.request_reprocessing(request.artifact_id)

    with pytest.raises(ApplicationError) as started_excinfo:
        world.record_started(request.artifact_id, run=0)
    with pytest.raises(ApplicationError) as result_excinfo:
        world.record_result(request.artifact_id, run=0)
    with pytest.raises(ApplicationError) as failure_excinfo:
        world.record_failure(request.artifact_id, "timeout", run=0)

    assert permanent_failure_of(started_excinfo) == ("stale_run", True)
    assert permanent_failure_of(result_excinfo) == ("stale_run", True)
    assert permanent_failure_of(failure_excinfo) == ("stale_run", True)
    artifact = world.artifacts.get_artifact(request.artifact_id)
    assert (artifact.run, artifact.status) == (1, ArtifactStatus.UPLOADED)


# --- What crosses Temporal -------------------------------------------------------------


async def test_content_facts_cross_temporal_with_their_types_intact() -> None:
    facts = ContentFacts(
        mime_type="text/plain",
        kind="text",
        page_count=None,
        char_count=3,
        text_locations=["7c/7c0123456789abcdef0123456789abcd"],
        details={"encoding": "utf-8", "truncated": False, "width": 64, "animated": True},
    )
    converter = DataConverter.default

    [received] = await converter.decode(await converter.encode([facts]), [ContentFacts])

    assert received == facts
    assert {key: type(value) for key, value in received.details.items()} == {
        "encoding": str,
        "truncated": bool,
        "width": int,
        "animated": bool,
    }


async def test_structured_outputs_cross_temporal_and_old_results_still_decode() -> None:
    facts = ContentFacts(
        mime_type="application/pdf",
        kind="pdf",
        page_count=2,
        char_count=0,
        markdown_location="aa/md",
        chunks_location="bb/chunks",
        pages_location="cc/pages",
        language="de",
        warnings=["no_text"],
    )
    converter = DataConverter.default
    # A result an earlier version returned, recorded in a workflow history.
    old = b'{"mime_type": "text/plain", "kind": "text", "page_count": null, "char_count": 3}'

    [received] = await converter.decode(await converter.encode([facts]), [ContentFacts])
    [payload] = await converter.encode([{}])
    payload.data = old
    [decoded_old] = await converter.decode([payload], [ContentFacts])

    assert received == facts
    assert decoded_old == ContentFacts(
        mime_type="text/plain", kind="text", page_count=None, char_count=3
    )
    assert (decoded_old.warnings, decoded_old.markdown_location) == ([], None)


def test_every_line_an_activity_logs_names_the_artifact_and_the_workflow(world: World) -> None:
    request = world.upload(TEXT)

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        world.record_started(request.artifact_id)
        world.extract(request)

    events = [line["event"] for line in logs]
    assert events == ["processing_started", "artifact_inspected", "content_extracted"]
    workflow_id = world.env.info.workflow_id
    for line in logs:
        assert line["artifact_id"] == str(request.artifact_id)
        assert line["workflow_id"] == workflow_id
    assert structlog.contextvars.get_contextvars() == {}, "nothing outlives the activity"


# --- Erasure, cancellation and what a run leaves behind ---------------------------------


def test_a_pdf_extraction_cancelled_deletes_the_batches_it_stored(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(options=ProcessingOptions(pdf=PdfLimits(page_batch=1)))
    request = world.upload(corpus.text_pdf(tmp_path, 3).read_bytes())
    inspection = world.inspect(request)

    def cancel_after_a_batch(*details: Any) -> None:
        # As the SDK does: the cancellation is raised in the activity's thread.
        if details and details[0]["block_locations"]:
            raise CancelledError("cancelled")

    world.env.on_heartbeat = cancel_after_a_batch
    with pytest.raises(CancelledError):
        world.env.run(
            world.activities.extract_content,
            Extraction(
                artifact_id=request.artifact_id,
                storage_location=request.storage_location,
                mime_type=inspection.mime_type,
                kind=inspection.kind,
            ),
        )

    assert set(world.blobs.blobs) == {request.storage_location}


def test_a_summary_travels_as_a_blob_that_recording_the_result_deletes(world: World) -> None:
    request = world.upload(TEXT)
    text = world.blobs.put(TEXT).location
    ref = world.env.run(
        world.activities.summarize_text,
        SummaryRequest(artifact_id=request.artifact_id, text_locations=[text], by_reference=True),
    )
    assert isinstance(ref, SummaryReference)
    result = ProcessingResult(
        artifact_id=request.artifact_id,
        run=0,
        facts=dataclasses.replace(FACTS, text_locations=[text]),
        summary_ref=ref,
    )

    world.env.run(world.activities.record_processing_result, result)
    world.env.run(world.activities.record_processing_result, result)  # a retry

    assert ref.location not in world.blobs.blobs
    summary = world.artifacts.get_artifact(request.artifact_id).summary
    assert summary is not None
    assert summary["text"] == "Just some plain text."


def test_recording_the_cancellation_deletes_the_runs_outputs_and_completes_the_erasure(
    world: World,
) -> None:
    request = world.upload(TEXT)
    output = world.blobs.put(b"text extracted before the run was cancelled").location
    world.record_started(request.artifact_id)
    assert world.eraser.erase(request.artifact_id, by=by_tenant("default")) is Erasure.PENDING

    world.env.run(
        world.activities.record_processing_cancelled,
        ProcessingCancellation(
            artifact_id=request.artifact_id,
            run=0,
            reason="cancelled",
            message="processing was cancelled on request",
            leftover_locations=[output],
        ),
    )

    assert world.artifacts.get_artifact(request.artifact_id).status is ArtifactStatus.ERASED
    assert world.blobs.blobs == {}
    assert world.keys.key_for(request.artifact_id) is None


def test_recording_a_result_completes_an_erasure_that_waited_for_the_run(world: World) -> None:
    request = world.upload(TEXT)
    world.record_started(request.artifact_id)
    world.eraser.erase(request.artifact_id, by=by_tenant("default"))

    world.record_result(request.artifact_id)

    assert world.artifacts.get_artifact(request.artifact_id).status is ArtifactStatus.ERASED
    assert world.blobs.blobs == {}


def test_every_step_on_an_erased_artifact_finishes_quietly_writing_nothing(world: World) -> None:
    request = world.upload(TEXT)
    world.record_result(request.artifact_id)
    world.eraser.erase(request.artifact_id, by=by_tenant("default"))
    events = world.stored_event_types(request.artifact_id)

    world.record_started(request.artifact_id)
    world.record_result(request.artifact_id)
    world.record_failure(request.artifact_id, "timeout")

    assert world.stored_event_types(request.artifact_id) == events
    assert events[-1] == "ArtifactErased"
