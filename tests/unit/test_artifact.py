"""The Artifact aggregate: the facts of an upload and the outcome of each processing run."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic

from domain.artifact import (
    Artifact,
    ArtifactCreated,
    ArtifactProcessed,
    ArtifactProcessingFailed,
    ArtifactStatus,
    ProcessingStarted,
    ReprocessingRequested,
    SummaryCandidateAdded,
)
from domain.errors import InvalidArtifact, OutcomeAlreadyRecorded, ReprocessingNotAllowed, StaleRun
from domain.filenames import MAX_FILENAME_LENGTH, sanitise_filename

CONTENT = b"%PDF-1.4 a tiny document"
SHA256 = hashlib.sha256(CONTENT).hexdigest()
PDF_FACTS: dict[str, Any] = {
    "mime_type": "application/pdf",
    "kind": "pdf",
    "page_count": 2,
    "char_count": 120,
    "text_locations": ["aa/aa0123456789abcdef0123456789abcd"],
    "details": {},
}
SUMMARY: dict[str, str] = {
    "text": "A tiny document.",
    "source": "lexrank",
    "model": "lexrank",
    "pipeline_version": "v1",
}


def new_artifact(**overrides: Any) -> Artifact:
    facts: dict[str, Any] = {
        "filename": "report.pdf",
        "content_type": "application/pdf",
        "size": len(CONTENT),
        "sha256": SHA256,
        "storage_location": "ab/ab0123456789abcdef0123456789abcd",
    }
    facts.update(overrides)
    return Artifact.create(**facts)


def process(artifact: Artifact, *, run: int = 0, **overrides: Any) -> None:
    """Records a successful outcome for ``run``: ``PDF_FACTS`` with ``overrides``."""
    artifact.record_processed(run=run, **{**PDF_FACTS, **overrides})


def event_types(artifact: Artifact) -> list[str]:
    """The names of the artifact's new events, collecting them."""
    return [type(event).__name__ for event in artifact.collect_events()]


def replay(events: Sequence[CanMutateAggregate[Any]]) -> Artifact:
    """The aggregate rebuilt from its events alone, as a repository does."""
    state: Artifact | None = None
    for event in events:
        state = event.mutate(state)
    assert isinstance(state, Artifact)
    return state


def test_a_new_artifact_records_the_facts_of_its_upload_as_artifact_created() -> None:
    artifact = new_artifact()

    [created] = artifact.collect_events()

    assert isinstance(created, ArtifactCreated)
    assert created.originator_id == artifact.id
    assert created.filename == "report.pdf"
    assert created.content_type == "application/pdf"
    assert created.size == len(CONTENT)
    assert created.sha256 == SHA256
    assert created.storage_location == "ab/ab0123456789abcdef0123456789abcd"
    assert artifact.status is ArtifactStatus.UPLOADED
    assert artifact.run == 0
    assert artifact.workflow_id == f"artifact-{artifact.id}"
    assert artifact.mime_type is None
    assert artifact.summary is None
    assert artifact.failure_reason is None


def test_versions_start_at_zero_like_eventstoredb_stream_positions() -> None:
    artifact = new_artifact()

    [created] = artifact.collect_events()

    assert Artifact.INITIAL_VERSION == 0
    assert created.originator_version == 0
    assert artifact.version == 0


@pytest.mark.parametrize(
    ("event_class", "name"),
    [
        (ArtifactCreated, "ArtifactCreated"),
        (ProcessingStarted, "ProcessingStarted"),
        (ArtifactProcessed, "ArtifactProcessed"),
        (SummaryCandidateAdded, "SummaryCandidateAdded"),
        (ArtifactProcessingFailed, "ArtifactProcessingFailed"),
        (ReprocessingRequested, "ReprocessingRequested"),
    ],
)
def test_event_topics_name_the_events_as_the_design_does(event_class: type, name: str) -> None:
    assert get_topic(event_class) == f"domain.artifact:Artifact.{name}"


def test_a_missing_content_type_is_recorded_as_octet_stream() -> None:
    assert new_artifact(content_type="").content_type == "application/octet-stream"


def test_an_empty_file_is_an_acceptable_artifact() -> None:
    assert new_artifact(size=0).size == 0


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"size": -1}, "size"),
        ({"sha256": "abc"}, "sha256"),
        ({"sha256": SHA256.upper()}, "sha256"),
        ({"sha256": SHA256 + "0"}, "sha256"),
        ({"sha256": "g" * 64}, "sha256"),
        ({"storage_location": ""}, "storage location"),
    ],
    ids=["negative-size", "short-sha", "uppercase-sha", "long-sha", "non-hex-sha", "no-location"],
)
def test_invalid_facts_are_refused(overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidArtifact, match=complaint):
        new_artifact(**overrides)


def test_the_stored_filename_is_sanitised() -> None:
    assert new_artifact(filename="../../etc/passwd").filename == "passwd"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("/absolute/path/photo.jpg", "photo.jpg"),
        ("bell\x07and\x00nul\x1f.txt", "bell_and_nul_.txt"),
        ("del\x7f.txt", "del_.txt"),
        ('what?<is>"this"|*.txt', "what_is_this_.txt"),
        ("drive:stream.txt", "drive_stream.txt"),
        ("  .hidden. ", "hidden"),
        ("e\u0301te\u0301.txt", "\u00e9t\u00e9.txt"),
        ("", "unnamed"),
        ("..", "unnamed"),
        ("../../", "unnamed"),
        ("dir/", "unnamed"),
    ],
)
def test_filenames_are_reduced_to_a_safe_display_name(given: str, stored: str) -> None:
    assert sanitise_filename(given) == stored


def test_a_long_filename_is_capped_keeping_its_extension() -> None:
    name = sanitise_filename("x" * 1000 + ".pdf")

    assert len(name) == MAX_FILENAME_LENGTH
    assert name == "x" * (MAX_FILENAME_LENGTH - 4) + ".pdf"


def test_a_long_filename_without_a_short_extension_is_simply_cut() -> None:
    no_extension = sanitise_filename("y" * 1000)
    long_extension = sanitise_filename("z" * 300 + "." + "e" * 40)

    assert no_extension == "y" * MAX_FILENAME_LENGTH
    assert long_extension == "z" * MAX_FILENAME_LENGTH


def test_a_filename_at_the_limit_is_kept_whole() -> None:
    name = "w" * (MAX_FILENAME_LENGTH - 4) + ".txt"

    assert sanitise_filename(name) == name


# --- A processing run: started, then one outcome ---------------------------------------


def test_starting_a_run_records_processing_started_with_its_workflow() -> None:
    artifact = new_artifact()
    artifact.collect_events()

    artifact.record_started(run=0, workflow_id="artifact-x")

    [started] = artifact.collect_events()
    assert isinstance(started, ProcessingStarted)
    assert (started.run, started.workflow_id) == (0, "artifact-x")
    assert artifact.status is ArtifactStatus.PROCESSING


def test_starting_the_same_run_again_adds_no_event() -> None:
    artifact = new_artifact()
    artifact.record_started(run=0, workflow_id="artifact-x")
    artifact.collect_events()

    artifact.record_started(run=0, workflow_id="artifact-x")

    assert artifact.collect_events() == []
    assert artifact.status is ArtifactStatus.PROCESSING


def test_a_start_retried_after_the_outcome_adds_no_event_and_keeps_the_outcome() -> None:
    artifact = new_artifact()
    artifact.record_started(run=0, workflow_id="artifact-x")
    process(artifact)
    artifact.collect_events()

    artifact.record_started(run=0, workflow_id="artifact-x")

    assert artifact.collect_events() == []
    assert artifact.status is ArtifactStatus.PROCESSED


def test_recording_success_records_the_facts_of_the_content() -> None:
    artifact = new_artifact()
    artifact.record_started(run=0, workflow_id="artifact-x")
    artifact.collect_events()

    process(artifact, details={"producer": "reportlab"})

    [processed] = artifact.collect_events()
    assert isinstance(processed, ArtifactProcessed)
    assert processed.run == 0
    assert processed.mime_type == "application/pdf"
    assert processed.kind == "pdf"
    assert (processed.page_count, processed.char_count) == (2, 120)
    assert processed.text_locations == PDF_FACTS["text_locations"]
    assert processed.details == {"producer": "reportlab"}
    assert artifact.status is ArtifactStatus.PROCESSED
    assert (artifact.mime_type, artifact.kind) == ("application/pdf", "pdf")
    assert (artifact.page_count, artifact.char_count) == (2, 120)
    assert artifact.text_locations == PDF_FACTS["text_locations"]
    assert artifact.details == {"producer": "reportlab"}
    assert artifact.version == 2


def test_an_image_is_processed_without_pages_or_text() -> None:
    artifact = new_artifact()

    process(
        artifact,
        mime_type="image/png",
        kind="image",
        page_count=None,
        char_count=0,
        text_locations=[],
        details={"width": 64, "height": 32, "format": "PNG"},
    )

    assert artifact.kind == "image"
    assert artifact.page_count is None
    assert artifact.text_locations == []
    assert artifact.details == {"width": 64, "height": 32, "format": "PNG"}


def test_the_recorded_facts_are_copies_of_what_was_given() -> None:
    locations = ["aa/aa0123456789abcdef0123456789abcd"]
    details: dict[str, Any] = {"width": 1}
    artifact = new_artifact()

    process(artifact, text_locations=locations, details=details)
    locations.append("bb/bb0123456789abcdef0123456789abcd")
    details["width"] = 2

    assert artifact.text_locations == ["aa/aa0123456789abcdef0123456789abcd"]
    assert artifact.details == {"width": 1}


def test_recording_failure_records_the_run_the_reason_and_the_message() -> None:
    artifact = new_artifact()
    artifact.collect_events()

    artifact.record_failed(run=0, reason="blob_missing", message="no blob at ab/cd")

    [failed] = artifact.collect_events()
    assert isinstance(failed, ArtifactProcessingFailed)
    assert (failed.run, failed.reason, failed.message) == (0, "blob_missing", "no blob at ab/cd")
    assert artifact.status is ArtifactStatus.FAILED
    assert artifact.failure_reason == "blob_missing"
    assert artifact.failure_message == "no blob at ab/cd"
    assert artifact.mime_type is None


def test_recording_the_same_success_again_adds_no_event() -> None:
    artifact = new_artifact()
    process(artifact)
    artifact.collect_events()

    process(artifact)

    assert artifact.collect_events() == []
    assert artifact.version == 1


def test_recording_the_same_failure_again_adds_no_event() -> None:
    artifact = new_artifact()
    artifact.record_failed(run=0, reason="blob_missing", message="gone")
    artifact.collect_events()

    artifact.record_failed(run=0, reason="blob_missing", message="gone")

    assert artifact.collect_events() == []
    assert artifact.version == 1


def test_a_repeated_failure_reason_keeps_the_first_message() -> None:
    artifact = new_artifact()
    artifact.record_failed(run=0, reason="timeout", message="first")
    artifact.collect_events()

    artifact.record_failed(run=0, reason="timeout", message="second")

    assert artifact.collect_events() == []
    assert artifact.failure_message == "first"


@pytest.mark.parametrize(
    "other",
    [
        {"mime_type": "text/plain"},
        {"page_count": 3},
        {"char_count": 121},
        {"text_locations": []},
    ],
    ids=["mime-type", "page-count", "char-count", "text-locations"],
)
def test_success_with_other_facts_is_a_conflicting_outcome(other: dict[str, Any]) -> None:
    artifact = new_artifact()
    process(artifact)
    artifact.collect_events()

    with pytest.raises(OutcomeAlreadyRecorded, match="processed"):
        process(artifact, **other)

    assert artifact.collect_events() == []
    assert artifact.mime_type == "application/pdf"
    assert artifact.page_count == 2


def test_failure_after_success_is_a_conflicting_outcome() -> None:
    artifact = new_artifact()
    process(artifact)
    artifact.collect_events()

    with pytest.raises(OutcomeAlreadyRecorded):
        artifact.record_failed(run=0, reason="blob_missing", message="gone")

    assert artifact.collect_events() == []
    assert artifact.status is ArtifactStatus.PROCESSED


def test_success_after_failure_is_a_conflicting_outcome() -> None:
    artifact = new_artifact()
    artifact.record_failed(run=0, reason="blob_missing", message="gone")
    artifact.collect_events()

    with pytest.raises(OutcomeAlreadyRecorded, match="failed"):
        process(artifact)

    assert artifact.collect_events() == []
    assert artifact.status is ArtifactStatus.FAILED


def test_failure_with_another_reason_is_a_conflicting_outcome() -> None:
    artifact = new_artifact()
    artifact.record_failed(run=0, reason="blob_missing", message="gone")
    artifact.collect_events()

    with pytest.raises(OutcomeAlreadyRecorded):
        artifact.record_failed(run=0, reason="blob_corrupted", message="bad")

    assert artifact.failure_reason == "blob_missing"


# --- Summary candidates ----------------------------------------------------------------


def test_a_summary_candidate_is_recorded_with_where_it_came_from() -> None:
    artifact = new_artifact()
    process(artifact)
    artifact.collect_events()

    artifact.add_summary_candidate(run=0, **SUMMARY)

    [added] = artifact.collect_events()
    assert isinstance(added, SummaryCandidateAdded)
    assert added.run == 0
    assert (added.text, added.source, added.model, added.pipeline_version) == (
        "A tiny document.",
        "lexrank",
        "lexrank",
        "v1",
    )
    assert artifact.summary == SUMMARY


def test_a_run_gets_one_summary_candidate_and_keeps_the_first() -> None:
    artifact = new_artifact()
    process(artifact)
    artifact.add_summary_candidate(run=0, **SUMMARY)
    artifact.collect_events()

    artifact.add_summary_candidate(run=0, **SUMMARY)
    artifact.add_summary_candidate(run=0, **{**SUMMARY, "text": "Another take."})

    assert artifact.collect_events() == []
    assert artifact.summary == SUMMARY


# --- Runs: reprocessing, and write-backs from superseded runs --------------------------


def test_reprocessing_a_processed_artifact_opens_run_one_and_clears_the_outcome() -> None:
    artifact = new_artifact()
    artifact.record_started(run=0, workflow_id="artifact-x")
    process(artifact)
    artifact.add_summary_candidate(run=0, **SUMMARY)
    artifact.collect_events()

    run = artifact.request_reprocessing()

    [requested] = artifact.collect_events()
    assert isinstance(requested, ReprocessingRequested)
    assert requested.run == run == artifact.run == 1
    assert artifact.status is ArtifactStatus.UPLOADED
    assert not artifact.has_outcome
    assert (artifact.mime_type, artifact.kind, artifact.page_count) == (None, None, None)
    assert artifact.char_count is None
    assert artifact.text_locations == []
    assert artifact.details == {}
    assert artifact.summary is None
    # The upload's facts are the artifact's own, whatever run it is on.
    assert (artifact.filename, artifact.sha256) == ("report.pdf", SHA256)


def test_reprocessing_a_failed_artifact_clears_the_failure() -> None:
    artifact = new_artifact()
    artifact.record_failed(run=0, reason="timeout", message="too slow")

    assert artifact.request_reprocessing() == 1

    assert artifact.status is ArtifactStatus.UPLOADED
    assert (artifact.failure_reason, artifact.failure_message) == (None, None)


def test_each_reprocessing_opens_the_next_run() -> None:
    artifact = new_artifact()
    artifact.record_failed(run=0, reason="timeout", message="too slow")
    artifact.request_reprocessing()
    artifact.record_failed(run=1, reason="timeout", message="too slow again")

    assert artifact.request_reprocessing() == 2
    assert artifact.run == 2


@pytest.mark.parametrize("started", [False, True], ids=["uploaded", "processing"])
def test_reprocessing_is_not_allowed_before_the_run_has_an_outcome(started: bool) -> None:
    artifact = new_artifact()
    if started:
        artifact.record_started(run=0, workflow_id="artifact-x")
    status = artifact.status
    artifact.collect_events()

    with pytest.raises(ReprocessingNotAllowed, match=status.value):
        artifact.request_reprocessing()

    assert artifact.collect_events() == []
    assert (artifact.run, artifact.status) == (0, status)


def test_a_new_run_starts_and_records_its_own_outcome() -> None:
    artifact = new_artifact()
    artifact.record_started(run=0, workflow_id="artifact-x")
    artifact.record_failed(run=0, reason="timeout", message="too slow")
    artifact.request_reprocessing()
    artifact.collect_events()

    artifact.record_started(run=1, workflow_id="artifact-x-run-1")
    process(artifact, run=1)
    artifact.add_summary_candidate(run=1, **SUMMARY)

    assert event_types(artifact) == [
        "ProcessingStarted",
        "ArtifactProcessed",
        "SummaryCandidateAdded",
    ]
    assert artifact.status is ArtifactStatus.PROCESSED
    assert artifact.workflow_id == f"artifact-{artifact.id}-run-1"
    assert artifact.failure_reason is None
    assert artifact.summary == SUMMARY


def test_write_backs_from_a_superseded_run_are_refused_as_stale() -> None:
    artifact = new_artifact()
    process(artifact)
    artifact.add_summary_candidate(run=0, **SUMMARY)
    artifact.request_reprocessing()
    artifact.collect_events()

    with pytest.raises(StaleRun, match="run 1, not 0"):
        artifact.record_started(run=0, workflow_id="artifact-x")
    with pytest.raises(StaleRun):
        process(artifact, run=0)
    with pytest.raises(StaleRun):
        artifact.add_summary_candidate(run=0, **SUMMARY)
    with pytest.raises(StaleRun):
        artifact.record_failed(run=0, reason="timeout", message="late")

    assert artifact.collect_events() == []
    assert artifact.status is ArtifactStatus.UPLOADED
    assert artifact.summary is None


def test_a_write_back_for_a_run_not_yet_opened_is_refused_as_stale() -> None:
    artifact = new_artifact()

    with pytest.raises(StaleRun, match="run 0, not 1"):
        process(artifact, run=1)

    assert artifact.status is ArtifactStatus.UPLOADED


# --- Replay ------------------------------------------------------------------------------


def test_replaying_the_events_of_a_processed_artifact_reproduces_its_state() -> None:
    original = new_artifact(filename="../in/voice.pdf")
    original.record_started(run=0, workflow_id="artifact-x")
    process(original)
    original.add_summary_candidate(run=0, **SUMMARY)

    copy = replay(original.collect_events())

    assert copy is not original
    assert copy.id == original.id
    assert copy.version == original.version == 3
    assert (copy.filename, copy.size, copy.sha256) == ("voice.pdf", len(CONTENT), SHA256)
    assert copy.status is ArtifactStatus.PROCESSED
    assert copy.mime_type == "application/pdf"
    assert copy.text_locations == PDF_FACTS["text_locations"]
    assert copy.summary == SUMMARY
    assert copy.created_on == original.created_on
    assert copy.modified_on == original.modified_on


def test_replaying_the_events_of_a_failed_artifact_reproduces_its_state() -> None:
    original = new_artifact()
    original.record_failed(run=0, reason="blob_corrupted", message="sha256 differs")

    copy = replay(original.collect_events())

    assert copy.status is ArtifactStatus.FAILED
    assert (copy.failure_reason, copy.failure_message) == ("blob_corrupted", "sha256 differs")
    assert copy.has_outcome


def test_replaying_every_kind_of_event_reproduces_the_whole_state() -> None:
    original = new_artifact()
    original.record_started(run=0, workflow_id="artifact-x")
    process(original)
    original.add_summary_candidate(run=0, **SUMMARY)
    original.request_reprocessing()
    original.record_started(run=1, workflow_id="artifact-x-run-1")
    original.record_failed(run=1, reason="corrupt", message="not a readable PDF")
    events = original.collect_events()

    copy = replay(events)

    assert [type(event).__name__ for event in events] == [
        "ArtifactCreated",
        "ProcessingStarted",
        "ArtifactProcessed",
        "SummaryCandidateAdded",
        "ReprocessingRequested",
        "ProcessingStarted",
        "ArtifactProcessingFailed",
    ]
    assert vars(copy) == vars(original)
    assert (copy.run, copy.status, copy.summary) == (1, ArtifactStatus.FAILED, None)
