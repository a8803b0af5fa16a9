"""The Artifact aggregate: the facts of an upload and the one outcome of its processing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic

from domain.artifact import (
    MAX_FILENAME_LENGTH,
    Artifact,
    ArtifactCreated,
    ArtifactProcessed,
    ArtifactProcessingFailed,
    ArtifactStatus,
    InvalidArtifact,
    OutcomeAlreadyRecorded,
    sanitise_filename,
)

CONTENT = b"%PDF-1.4 a tiny document"
SHA256 = hashlib.sha256(CONTENT).hexdigest()


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
    assert artifact.mime_type is None
    assert artifact.failure_reason is None


def test_versions_start_at_zero_like_eventstoredb_stream_positions() -> None:
    artifact = new_artifact()

    [created] = artifact.collect_events()

    assert Artifact.INITIAL_VERSION == 0
    assert created.originator_version == 0
    assert artifact.version == 0


def test_event_topics_name_the_events_as_the_design_does() -> None:
    assert "ArtifactCreated" in get_topic(ArtifactCreated)
    assert get_topic(ArtifactCreated) == "domain.artifact:Artifact.ArtifactCreated"
    assert get_topic(ArtifactProcessed) == "domain.artifact:Artifact.ArtifactProcessed"
    assert (
        get_topic(ArtifactProcessingFailed) == "domain.artifact:Artifact.ArtifactProcessingFailed"
    )


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


def test_recording_success_records_the_sniffed_mime_type() -> None:
    artifact = new_artifact()
    artifact.collect_events()

    artifact.record_processed(mime_type="application/pdf")

    [processed] = artifact.collect_events()
    assert isinstance(processed, ArtifactProcessed)
    assert processed.mime_type == "application/pdf"
    assert artifact.status is ArtifactStatus.PROCESSED
    assert artifact.mime_type == "application/pdf"
    assert artifact.version == 1


def test_recording_failure_records_the_reason_and_message() -> None:
    artifact = new_artifact()
    artifact.collect_events()

    artifact.record_failed(reason="blob_missing", message="no blob at ab/cd")

    [failed] = artifact.collect_events()
    assert isinstance(failed, ArtifactProcessingFailed)
    assert (failed.reason, failed.message) == ("blob_missing", "no blob at ab/cd")
    assert artifact.status is ArtifactStatus.FAILED
    assert artifact.failure_reason == "blob_missing"
    assert artifact.failure_message == "no blob at ab/cd"
    assert artifact.mime_type is None


def test_recording_the_same_success_again_adds_no_event() -> None:
    artifact = new_artifact()
    artifact.record_processed(mime_type="application/pdf")
    artifact.collect_events()

    artifact.record_processed(mime_type="application/pdf")

    assert artifact.collect_events() == []
    assert artifact.version == 1


def test_recording_the_same_failure_again_adds_no_event() -> None:
    artifact = new_artifact()
    artifact.record_failed(reason="blob_missing", message="gone")
    artifact.collect_events()

    artifact.record_failed(reason="blob_missing", message="gone")

    assert artifact.collect_events() == []
    assert artifact.version == 1


def test_a_repeated_failure_reason_keeps_the_first_message() -> None:
    artifact = new_artifact()
    artifact.record_failed(reason="timeout", message="first")
    artifact.collect_events()

    artifact.record_failed(reason="timeout", message="second")

    assert artifact.collect_events() == []
    assert artifact.failure_message == "first"


def test_success_with_another_mime_type_is_a_conflicting_outcome() -> None:
    artifact = new_artifact()
    artifact.record_processed(mime_type="application/pdf")
    artifact.collect_events()

    with pytest.raises(OutcomeAlreadyRecorded, match="processed"):
        artifact.record_processed(mime_type="text/plain")

    assert artifact.collect_events() == []
    assert artifact.mime_type == "application/pdf"


def test_failure_after_success_is_a_conflicting_outcome() -> None:
    artifact = new_artifact()
    artifact.record_processed(mime_type="application/pdf")
    artifact.collect_events()

    with pytest.raises(OutcomeAlreadyRecorded):
        artifact.record_failed(reason="blob_missing", message="gone")

    assert artifact.collect_events() == []
    assert artifact.status is ArtifactStatus.PROCESSED


def test_success_after_failure_is_a_conflicting_outcome() -> None:
    artifact = new_artifact()
    artifact.record_failed(reason="blob_missing", message="gone")
    artifact.collect_events()

    with pytest.raises(OutcomeAlreadyRecorded, match="failed"):
        artifact.record_processed(mime_type="application/pdf")

    assert artifact.collect_events() == []
    assert artifact.status is ArtifactStatus.FAILED


def test_failure_with_another_reason_is_a_conflicting_outcome() -> None:
    artifact = new_artifact()
    artifact.record_failed(reason="blob_missing", message="gone")
    artifact.collect_events()

    with pytest.raises(OutcomeAlreadyRecorded):
        artifact.record_failed(reason="blob_corrupted", message="bad")

    assert artifact.failure_reason == "blob_missing"


def test_replaying_the_events_of_a_processed_artifact_reproduces_its_state() -> None:
    original = new_artifact(filename="../in/voice.pdf")
    original.record_processed(mime_type="application/pdf")

    copy = replay(original.collect_events())

    assert copy is not original
    assert copy.id == original.id
    assert copy.version == original.version == 1
    assert (copy.filename, copy.size, copy.sha256) == ("voice.pdf", len(CONTENT), SHA256)
    assert copy.status is ArtifactStatus.PROCESSED
    assert copy.mime_type == "application/pdf"
    assert copy.created_on == original.created_on
    assert copy.modified_on == original.modified_on


def test_replaying_the_events_of_a_failed_artifact_reproduces_its_state() -> None:
    original = new_artifact()
    original.record_failed(reason="blob_corrupted", message="sha256 differs")

    copy = replay(original.collect_events())

    assert copy.status is ArtifactStatus.FAILED
    assert (copy.failure_reason, copy.failure_message) == ("blob_corrupted", "sha256 differs")
    assert copy.has_outcome
