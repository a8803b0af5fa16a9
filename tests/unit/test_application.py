"""ArtifactsApplication, the use cases, on eventsourcing's in-memory persistence."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import Recording
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.utils import get_topic

from application.artifacts import ArtifactNotFound, ArtifactsApplication, processing_request
from application.ports import ContentFacts, ProcessingRequest, SummaryCandidate
from domain.artifact import (
    ArtifactCreated,
    ArtifactProcessed,
    ArtifactProcessingFailed,
    ArtifactStatus,
    ProcessingStarted,
    ReprocessingRequested,
    SummaryCandidateAdded,
)
from domain.errors import InvalidArtifact, OutcomeAlreadyRecorded, ReprocessingNotAllowed, StaleRun
from tests.fakes import IN_MEMORY_ENV, in_memory_artifacts

CONTENT = b"hello, artifact\n"
SHA256 = hashlib.sha256(CONTENT).hexdigest()
LOCATION = "3f/3f2a0123456789abcdef0123456789ab"
TEXT_LOCATION = "7c/7c0123456789abcdef0123456789abcd"
FACTS = ContentFacts(
    mime_type="text/plain",
    kind="text",
    page_count=None,
    char_count=len(CONTENT),
    text_locations=[TEXT_LOCATION],
    details={"encoding": "utf-8", "truncated": False},
)
SUMMARY = SummaryCandidate(
    text="hello, artifact", source="lexrank", model="lexrank", pipeline_version="v1"
)


class SaveRecordingArtifacts(ArtifactsApplication):
    """The real application, remembering which events each ``save`` stored together."""

    def __init__(self) -> None:
        super().__init__(env=dict(IN_MEMORY_ENV))
        self.saves: list[list[str]] = []

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        recordings = super().save(*objs, **kwargs)
        self.saves.append([type(r.domain_event).__name__ for r in recordings])
        return recordings


@pytest.fixture
def app() -> Iterator[ArtifactsApplication]:
    app = in_memory_artifacts()
    yield app
    app.close()


def upload(app: ArtifactsApplication, filename: str = "hello.txt") -> UUID:
    return app.create_artifact_once(
        idempotency_key=None,
        filename=filename,
        content_type="text/plain",
        size=len(CONTENT),
        sha256=SHA256,
        storage_location=LOCATION,
    ).id


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
        app.create_artifact_once(
            idempotency_key=None,
            filename="x",
            content_type="",
            size=1,
            sha256="nope",
            storage_location=LOCATION,
        )

    assert app.recorder.max_notification_id() in (None, 0)


def test_an_unknown_artifact_is_not_found(app: ArtifactsApplication) -> None:
    with pytest.raises(ArtifactNotFound):
        app.get_artifact(uuid4())


def test_writing_to_an_unknown_artifact_is_not_found(app: ArtifactsApplication) -> None:
    unknown = uuid4()

    with pytest.raises(ArtifactNotFound):
        app.record_processing_started(unknown, run=0, workflow_id="artifact-x")
    with pytest.raises(ArtifactNotFound):
        app.record_processing_result(unknown, run=0, facts=FACTS)
    with pytest.raises(ArtifactNotFound):
        app.record_processing_failure(unknown, run=0, reason="blob_missing", message="gone")
    with pytest.raises(ArtifactNotFound):
        app.request_reprocessing(unknown)

    assert app.recorder.max_notification_id() in (None, 0)


def test_recording_the_start_marks_the_artifact_processing_once(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)

    for _ in range(3):
        app.record_processing_started(artifact_id, run=0, workflow_id="artifact-x")

    assert stored_topics(app, artifact_id) == [
        get_topic(ArtifactCreated),
        get_topic(ProcessingStarted),
    ]
    artifact = app.get_artifact(artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSING


@pytest.fixture
def recording_app() -> Iterator[SaveRecordingArtifacts]:
    app = SaveRecordingArtifacts()
    yield app
    app.close()


def test_a_result_and_its_summary_are_stored_together_in_one_save(
    recording_app: SaveRecordingArtifacts,
) -> None:
    app = recording_app
    artifact_id = upload(app)

    app.record_processing_result(artifact_id, run=0, facts=FACTS, summary=SUMMARY)

    assert app.saves == [["ArtifactCreated"], ["ArtifactProcessed", "SummaryCandidateAdded"]]
    artifact = app.get_artifact(artifact_id)
    assert artifact.status is ArtifactStatus.PROCESSED
    assert (artifact.mime_type, artifact.kind, artifact.char_count) == (
        "text/plain",
        "text",
        len(CONTENT),
    )
    assert artifact.text_locations == [TEXT_LOCATION]
    assert artifact.details == {"encoding": "utf-8", "truncated": False}
    assert artifact.summary == {
        "text": "hello, artifact",
        "source": "lexrank",
        "model": "lexrank",
        "pipeline_version": "v1",
    }


def test_a_result_without_a_summary_stores_no_summary_event(app: ArtifactsApplication) -> None:
    artifact_id = upload(app)

    app.record_processing_result(artifact_id, run=0, facts=FACTS)

    assert stored_topics(app, artifact_id) == [
        get_topic(ArtifactCreated),
        get_topic(ArtifactProcessed),
    ]
    assert app.get_artifact(artifact_id).summary is None


def test_a_retried_result_stores_nothing_more(app: ArtifactsApplication) -> None:
    artifact_id = upload(app)
    app.record_processing_result(artifact_id, run=0, facts=FACTS, summary=SUMMARY)
    position = app.last_written_position

    for _ in range(3):
        app.record_processing_result(artifact_id, run=0, facts=FACTS, summary=SUMMARY)

    assert stored_topics(app, artifact_id) == [
        get_topic(ArtifactCreated),
        get_topic(ArtifactProcessed),
        get_topic(SummaryCandidateAdded),
    ]
    assert app.last_written_position == position
    assert app.get_artifact(artifact_id).version == 2


def test_a_recorded_failure_is_stored_once_however_often_it_is_recorded(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)

    for _ in range(3):
        app.record_processing_failure(artifact_id, run=0, reason="blob_missing", message="gone")

    assert stored_topics(app, artifact_id) == [
        get_topic(ArtifactCreated),
        get_topic(ArtifactProcessingFailed),
    ]
    artifact = app.get_artifact(artifact_id)
    assert artifact.status is ArtifactStatus.FAILED
    assert (artifact.failure_reason, artifact.failure_message) == ("blob_missing", "gone")


def test_a_conflicting_outcome_is_refused_and_stores_nothing(app: ArtifactsApplication) -> None:
    artifact_id = upload(app)
    app.record_processing_result(artifact_id, run=0, facts=FACTS)
    other = ContentFacts(mime_type="application/pdf", kind="pdf", page_count=1, char_count=9)

    with pytest.raises(OutcomeAlreadyRecorded):
        app.record_processing_failure(artifact_id, run=0, reason="timeout", message="too slow")
    with pytest.raises(OutcomeAlreadyRecorded):
        app.record_processing_result(artifact_id, run=0, facts=other)

    assert len(stored_topics(app, artifact_id)) == 2
    assert app.get_artifact(artifact_id).mime_type == "text/plain"


def test_outcomes_of_different_artifacts_do_not_interfere(app: ArtifactsApplication) -> None:
    first, second = upload(app), upload(app)

    app.record_processing_result(first, run=0, facts=FACTS)
    app.record_processing_failure(second, run=0, reason="blob_missing", message="gone")

    assert app.get_artifact(first).status is ArtifactStatus.PROCESSED
    assert app.get_artifact(second).status is ArtifactStatus.FAILED
    topics = [n.topic for n in app.notification_log.select(start=1, limit=10)]
    assert topics == [
        get_topic(ArtifactCreated),
        get_topic(ArtifactCreated),
        get_topic(ArtifactProcessed),
        get_topic(ArtifactProcessingFailed),
    ]


def test_the_history_lists_what_happened_to_the_artifact_in_order(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)
    app.record_processing_started(artifact_id, run=0, workflow_id="artifact-x")
    app.record_processing_result(artifact_id, run=0, facts=FACTS, summary=SUMMARY)
    app.request_reprocessing(artifact_id)

    history = app.history(artifact_id)

    assert [entry.type for entry in history] == [
        "ArtifactCreated",
        "ProcessingStarted",
        "ArtifactProcessed",
        "SummaryCandidateAdded",
        "ReprocessingRequested",
    ]
    assert [entry.version for entry in history] == [0, 1, 2, 3, 4]
    times = [entry.at for entry in history]
    assert times == sorted(times)
    assert times[0] == app.get_artifact(artifact_id).created_on


def test_the_history_of_an_unknown_artifact_is_not_found(app: ArtifactsApplication) -> None:
    with pytest.raises(ArtifactNotFound):
        app.history(uuid4())


def test_reprocessing_opens_the_next_run_as_a_stored_event(app: ArtifactsApplication) -> None:
    artifact_id = upload(app)
    app.record_processing_failure(artifact_id, run=0, reason="timeout", message="too slow")

    run = app.request_reprocessing(artifact_id)

    assert run == 1
    requested = list(app.events.get(artifact_id))[-1]
    assert isinstance(requested, ReprocessingRequested)
    assert requested.run == 1
    artifact = app.get_artifact(artifact_id)
    assert (artifact.run, artifact.status) == (1, ArtifactStatus.UPLOADED)
    assert artifact.failure_reason is None


def test_reprocessing_while_a_run_is_in_progress_is_refused_and_stores_nothing(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)
    with pytest.raises(ReprocessingNotAllowed):
        app.request_reprocessing(artifact_id)
    app.record_processing_started(artifact_id, run=0, workflow_id="artifact-x")
    position = app.last_written_position

    with pytest.raises(ReprocessingNotAllowed):
        app.request_reprocessing(artifact_id)

    assert app.last_written_position == position
    assert app.get_artifact(artifact_id).run == 0


def test_a_new_run_records_its_own_outcome_and_refuses_the_old_runs(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)
    app.record_processing_result(artifact_id, run=0, facts=FACTS, summary=SUMMARY)
    app.request_reprocessing(artifact_id)
    better = SummaryCandidate(
        text="A greeting.", source="openai", model="gpt-test", pipeline_version="v2"
    )

    with pytest.raises(StaleRun):
        app.record_processing_result(artifact_id, run=0, facts=FACTS, summary=SUMMARY)
    app.record_processing_started(artifact_id, run=1, workflow_id="artifact-x-run-1")
    app.record_processing_result(artifact_id, run=1, facts=FACTS, summary=better)

    artifact = app.get_artifact(artifact_id)
    assert (artifact.run, artifact.status) == (1, ArtifactStatus.PROCESSED)
    assert artifact.summary is not None
    assert artifact.summary["model"] == "gpt-test"
    assert [entry.type for entry in app.history(artifact_id)][-3:] == [
        "ProcessingStarted",
        "ArtifactProcessed",
        "SummaryCandidateAdded",
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
        content_type="text/plain",
        size=len(CONTENT),
        sha256=SHA256,
        run=0,
    )


def test_the_processing_request_for_a_run_carries_the_artifacts_facts_and_the_run(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app, filename="dir/hello.txt")
    app.record_processing_failure(artifact_id, run=0, reason="timeout", message="too slow")
    run = app.request_reprocessing(artifact_id)

    request = app.processing_request_for(artifact_id, run=run)

    assert request == ProcessingRequest(
        artifact_id=artifact_id,
        storage_location=LOCATION,
        content_type="text/plain",
        size=len(CONTENT),
        sha256=SHA256,
        run=1,
    )


def test_the_processing_request_for_an_unknown_artifact_is_not_found(
    app: ArtifactsApplication,
) -> None:
    with pytest.raises(ArtifactNotFound):
        app.processing_request_for(uuid4(), run=0)


def test_the_last_written_position_follows_every_stored_write(
    app: ArtifactsApplication,
) -> None:
    assert app.last_written_position == 0
    artifact_id = upload(app)
    positions = [app.last_written_position]

    app.record_processing_started(artifact_id, run=0, workflow_id="artifact-x")
    positions.append(app.last_written_position)
    app.record_processing_started(artifact_id, run=0, workflow_id="artifact-x")  # a no-op
    positions.append(app.last_written_position)
    app.record_processing_result(artifact_id, run=0, facts=FACTS, summary=SUMMARY)
    positions.append(app.last_written_position)
    upload(app)
    positions.append(app.last_written_position)

    assert positions == [1, 2, 2, 4, 5]
    assert app.last_written_position == app.recorder.max_notification_id()


# --- Events recorded before the structured outputs (ArtifactProcessed version 1) -----------


def store_version_1_processed(app: ArtifactsApplication, artifact_id: UUID) -> None:
    """Appends an ``ArtifactProcessed`` in the shape version 1 stored it: no structured
    outputs, no language, no warnings, and no ``class_version`` in its state."""
    artifact = app.get_artifact(artifact_id)
    artifact.record_processed(
        run=0,
        mime_type="text/plain",
        kind="text",
        page_count=None,
        char_count=5,
        text_locations=["ab/abc"],
        details={"encoding": "utf-8"},
    )
    [event] = artifact.collect_events()
    stored = app.mapper.to_stored_event(event)
    state = app.mapper.transcoder.decode(stored.state)
    for added in ("markdown_location", "chunks_location", "pages_location", "language"):
        del state[added]
    del state["warnings"]
    del state["class_version"]
    app.recorder.insert_events(
        [
            type(stored)(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=app.mapper.transcoder.encode(state),
            )
        ]
    )


def test_a_processed_event_stored_before_the_structured_outputs_still_loads(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)
    app.record_processing_started(artifact_id, run=0, workflow_id="wf")
    store_version_1_processed(app, artifact_id)

    artifact = app.get_artifact(artifact_id)

    assert artifact.status is ArtifactStatus.PROCESSED
    assert (artifact.char_count, artifact.text_locations) == (5, ["ab/abc"])
    assert (artifact.markdown_location, artifact.chunks_location, artifact.pages_location) == (
        None,
        None,
        None,
    )
    assert (artifact.language, artifact.warnings) == (None, [])


def test_a_result_records_its_structured_outputs_language_and_warnings(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)
    app.record_processing_started(artifact_id, run=0, workflow_id="wf")
    facts = ContentFacts(
        mime_type="image/png",
        kind="image",
        page_count=1,
        char_count=0,
        markdown_location="aa/md",
        chunks_location="bb/chunks",
        pages_location="cc/pages",
        language=None,
        warnings=["no_text"],
    )

    app.record_processing_result(artifact_id, run=0, facts=facts)

    artifact = app.get_artifact(artifact_id)
    assert (artifact.markdown_location, artifact.chunks_location, artifact.pages_location) == (
        "aa/md",
        "bb/chunks",
        "cc/pages",
    )
    assert artifact.warnings == ["no_text"]
    [stored] = [
        event
        for event in app.recorder.select_events(artifact_id)
        if event.topic.endswith("ArtifactProcessed")
    ]
    assert app.mapper.transcoder.decode(stored.state)["class_version"] == 2


def test_reprocessing_forgets_the_previous_runs_outputs_and_warnings(
    app: ArtifactsApplication,
) -> None:
    artifact_id = upload(app)
    app.record_processing_started(artifact_id, run=0, workflow_id="wf")
    facts = ContentFacts(
        mime_type="text/plain",
        kind="text",
        page_count=None,
        char_count=0,
        markdown_location="aa/md",
        warnings=["no_text"],
    )
    app.record_processing_result(artifact_id, run=0, facts=facts)

    app.request_reprocessing(artifact_id)

    artifact = app.get_artifact(artifact_id)
    assert (artifact.markdown_location, artifact.warnings, artifact.language) == (None, [], None)
