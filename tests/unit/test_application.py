"""ArtifactsApplication, the use cases, on eventsourcing's in-memory persistence."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.utils import get_topic

from application.artifacts import ArtifactNotFound, ArtifactsApplication, processing_request
from application.ports import ProcessingRequest
from domain.artifact import (
    ArtifactCreated,
    ArtifactProcessed,
    ArtifactProcessingFailed,
    ArtifactStatus,
    InvalidArtifact,
    OutcomeAlreadyRecorded,
)
from tests.fakes import in_memory_artifacts

CONTENT = b"hello, artifact\n"
SHA256 = hashlib.sha256(CONTENT).hexdigest()
LOCATION = "3f/3f2a0123456789abcdef0123456789ab"


@pytest.fixture
def app() -> Iterator[ArtifactsApplication]:
    app = in_memory_artifacts()
    yield app
    app.close()


def upload(app: ArtifactsApplication, filename: str = "hello.txt") -> UUID:
    return app.create_artifact(
        filename=filename,
        content_type="text/plain",
        size=len(CONTENT),
        sha256=SHA256,
        storage_location=LOCATION,
    )


def stored_topics(app: ArtifactsApplication, artifact_id: UUID) -> list[str]:
    """The topics of the artifact's stored events, in order, as the event store has them."""
    return [stored.topic for stored in app.recorder.select_events(artifact_id)]


def test_the_test_application_runs_in_memory_whatever_the_shell_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.postgres")
    monkeypatch.setenv("ARTIFACTS_PERSISTENCE_MODULE", "eventsourcing.postgres")

    app = in_memory_artifacts()

    assert isinstance(app.recorder, POPOApplicationRecorder)


def test_a_created_artifact_can_be_read_back() -> None:
    app = in_memory_artifacts()

    artifact_id = upload(app, filename="../secret/hello.txt")

    artifact = app.get_artifact(artifact_id)
    assert artifact.id == artifact_id
    assert artifact.filename == "hello.txt"
    assert artifact.content_type == "text/plain"
    assert (artifact.size, artifact.sha256) == (len(CONTENT), SHA256)
    assert artifact.storage_location == LOCATION
    assert artifact.status is ArtifactStatus.UPLOADED


def test_creating_an_artifact_stores_one_artifact_created_event(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)

    assert stored_topics(app, artifact_id) == [get_topic(ArtifactCreated)]
    [notification] = app.notification_log.select(start=1, limit=10)
    assert notification.originator_id == artifact_id
    assert "ArtifactCreated" in notification.topic


def test_invalid_facts_store_nothing(app: ArtifactsApplication) -> None:
    with pytest.raises(InvalidArtifact):
        app.create_artifact(
            filename="x", content_type="", size=1, sha256="nope", storage_location=LOCATION
        )

    assert app.recorder.max_notification_id() in (None, 0)


def test_an_unknown_artifact_is_not_found(app: ArtifactsApplication) -> None:
    with pytest.raises(ArtifactNotFound):
        app.get_artifact(uuid4())


def test_recording_a_result_for_an_unknown_artifact_is_not_found(
    app: ArtifactsApplication,
) -> None:
    with pytest.raises(ArtifactNotFound):
        app.record_processing_result(uuid4(), mime_type="text/plain")
    with pytest.raises(ArtifactNotFound):
        app.record_processing_failure(uuid4(), reason="blob_missing", message="gone")


def test_a_recorded_result_is_stored_once_however_often_it_is_recorded(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)

    for _ in range(3):
        app.record_processing_result(artifact_id, mime_type="text/plain")

    assert stored_topics(app, artifact_id) == [
        get_topic(ArtifactCreated),
        get_topic(ArtifactProcessed),
    ]
    artifact = app.get_artifact(artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSED
    assert artifact.mime_type == "text/plain"
    assert artifact.version == 1


def test_a_recorded_failure_is_stored_once_however_often_it_is_recorded(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)

    for _ in range(3):
        app.record_processing_failure(artifact_id, reason="blob_missing", message="gone")

    assert stored_topics(app, artifact_id) == [
        get_topic(ArtifactCreated),
        get_topic(ArtifactProcessingFailed),
    ]
    artifact = app.get_artifact(artifact_id)
    assert artifact.status is ArtifactStatus.FAILED
    assert (artifact.failure_reason, artifact.failure_message) == ("blob_missing", "gone")


def test_a_conflicting_outcome_is_refused_and_stores_nothing(app: ArtifactsApplication) -> None:
    artifact_id = upload(app)
    app.record_processing_result(artifact_id, mime_type="text/plain")

    with pytest.raises(OutcomeAlreadyRecorded):
        app.record_processing_failure(artifact_id, reason="timeout", message="too slow")
    with pytest.raises(OutcomeAlreadyRecorded):
        app.record_processing_result(artifact_id, mime_type="application/pdf")

    assert len(stored_topics(app, artifact_id)) == 2
    assert app.get_artifact(artifact_id).mime_type == "text/plain"


def test_outcomes_of_different_artifacts_do_not_interfere(app: ArtifactsApplication) -> None:
    first, second = upload(app), upload(app)

    app.record_processing_result(first, mime_type="text/plain")
    app.record_processing_failure(second, reason="blob_missing", message="gone")

    assert app.get_artifact(first).status is ArtifactStatus.PROCESSED
    assert app.get_artifact(second).status is ArtifactStatus.FAILED
    topics = [n.topic for n in app.notification_log.select(start=1, limit=10)]
    assert topics == [
        get_topic(ArtifactCreated),
        get_topic(ArtifactCreated),
        get_topic(ArtifactProcessed),
        get_topic(ArtifactProcessingFailed),
    ]


def test_the_processing_request_carries_the_facts_of_the_created_event(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app, filename="dir/hello.txt")
    [created] = app.events.get(artifact_id)
    assert isinstance(created, ArtifactCreated)

    request = processing_request(created)

    assert request == ProcessingRequest(
        artifact_id=artifact_id,
        storage_location=LOCATION,
        filename="hello.txt",
        content_type="text/plain",
        size=len(CONTENT),
        sha256=SHA256,
    )
