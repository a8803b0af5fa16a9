"""ArtifactActivities in an activity context, over the in-memory application and a fake store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest
from domain.artifact import ArtifactStatus
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import Inspection, ProcessingFailure, ProcessingResult
from tests.fakes import FakeBlobStore, in_memory_artifacts

# The start of a real (minimal) PDF: libmagic knows it by its header.
PDF = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)
TEXT = b"Just some plain text.\nTwo lines of it.\n"


class World:
    """The activities with what they act on: an application, a blob store, a context."""

    def __init__(self) -> None:
        self.artifacts: ArtifactsApplication = in_memory_artifacts()
        self.blobs = FakeBlobStore()
        self.activities = ArtifactActivities(self.artifacts, self.blobs)
        self.heartbeats: list[object] = []
        self.env = ActivityEnvironment()
        self.env.on_heartbeat = lambda *details: self.heartbeats.extend(details)

    def upload(self, content: bytes, filename: str = "upload.bin") -> ProcessingRequest:
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

    def inspect(self, request: ProcessingRequest) -> Inspection:
        return self.env.run(self.activities.inspect_artifact, request)

    def record_result(self, artifact_id: UUID, mime_type: str) -> None:
        self.env.run(
            self.activities.record_processing_result,
            ProcessingResult(artifact_id=artifact_id, mime_type=mime_type),
        )

    def record_failure(self, artifact_id: UUID, reason: str, message: str = "it broke") -> None:
        self.env.run(
            self.activities.record_processing_failure,
            ProcessingFailure(artifact_id=artifact_id, reason=reason, message=message),
        )

    def stored_event_count(self, artifact_id: UUID) -> int:
        return len(self.artifacts.recorder.select_events(artifact_id))


@pytest.fixture
def world() -> Iterator[World]:
    world = World()
    yield world
    world.artifacts.close()


def permanent_failure_of(excinfo: pytest.ExceptionInfo[ApplicationError]) -> tuple[str, bool]:
    return excinfo.value.type or "", excinfo.value.non_retryable


def test_inspecting_a_pdf_verifies_it_and_sniffs_its_mime_type(world: World) -> None:
    request = world.upload(PDF, filename="paper.txt")

    inspection = world.inspect(request)

    assert inspection == Inspection(mime_type="application/pdf", size=len(PDF))


def test_inspecting_plain_text_sniffs_text_plain(world: World) -> None:
    request = world.upload(TEXT, filename="notes.pdf")

    assert world.inspect(request) == Inspection(mime_type="text/plain", size=len(TEXT))


def test_inspecting_reports_progress_by_heartbeat(world: World) -> None:
    world.inspect(world.upload(TEXT))

    assert world.heartbeats == [len(TEXT)]


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


def test_recording_a_result_marks_the_artifact_processed_once(world: World) -> None:
    request = world.upload(PDF)

    world.record_result(request.artifact_id, "application/pdf")
    world.record_result(request.artifact_id, "application/pdf")

    artifact = world.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSED
    assert artifact.mime_type == "application/pdf"
    assert world.stored_event_count(request.artifact_id) == 2


def test_recording_a_failure_marks_the_artifact_failed_once(world: World) -> None:
    request = world.upload(PDF)

    world.record_failure(request.artifact_id, "blob_missing", "no blob")
    world.record_failure(request.artifact_id, "blob_missing", "no blob")

    artifact = world.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.FAILED
    assert (artifact.failure_reason, artifact.failure_message) == ("blob_missing", "no blob")
    assert world.stored_event_count(request.artifact_id) == 2


def test_recording_for_an_unknown_artifact_fails_permanently(world: World) -> None:
    with pytest.raises(ApplicationError) as result_excinfo:
        world.record_result(uuid4(), "text/plain")
    with pytest.raises(ApplicationError) as failure_excinfo:
        world.record_failure(uuid4(), "blob_missing")

    assert permanent_failure_of(result_excinfo) == ("artifact_not_found", True)
    assert permanent_failure_of(failure_excinfo) == ("artifact_not_found", True)


def test_recording_a_conflicting_outcome_fails_permanently(world: World) -> None:
    request = world.upload(TEXT)
    world.record_result(request.artifact_id, "text/plain")

    with pytest.raises(ApplicationError) as failure_excinfo:
        world.record_failure(request.artifact_id, "timeout")
    with pytest.raises(ApplicationError) as result_excinfo:
        world.record_result(request.artifact_id, "application/pdf")

    assert permanent_failure_of(failure_excinfo) == ("outcome_conflict", True)
    assert permanent_failure_of(result_excinfo) == ("outcome_conflict", True)
    assert world.artifacts.get_artifact(request.artifact_id).mime_type == "text/plain"
    assert world.stored_event_count(request.artifact_id) == 2
