"""Crypto-shredding: personal fields are stored sealed under the artifact's own key."""

from __future__ import annotations

import uuid

import pytest

from application.artifacts import ArtifactsApplication
from domain.artifact import ERASED_TEXT, Artifact, ArtifactCreated
from tests.fakes import IN_MEMORY_ENV, InMemoryKeyStore, in_memory_artifacts

MARKER = "Zq7-personal-marker"


def created(app: ArtifactsApplication, filename: str = f"{MARKER}.pdf") -> uuid.UUID:
    return app.create_artifact_once(
        idempotency_key=None,
        filename=filename,
        content_type="application/pdf",
        size=3,
        sha256="a" * 64,
        storage_location="ab/cd/upload",
        tenant="alpha",
    ).id


def stored_states(app: ArtifactsApplication, artifact_id: uuid.UUID) -> list[bytes]:
    return [event.state for event in app.recorder.select_events(artifact_id)]


def test_the_filename_summary_and_failure_message_are_stored_sealed() -> None:
    app = in_memory_artifacts()
    artifact_id = created(app)
    app.record_processing_failure(artifact_id, run=0, reason="corrupt", message=f"{MARKER} page")

    states = stored_states(app, artifact_id)

    assert len(states) == 2
    assert not any(MARKER.encode() in state for state in states)
    artifact = app.get_artifact(artifact_id)
    assert (artifact.filename, artifact.failure_message) == (f"{MARKER}.pdf", f"{MARKER} page")
    assert artifact.tenant == "alpha"


def test_a_destroyed_key_leaves_the_personal_fields_erased_and_the_rest_readable() -> None:
    keys = InMemoryKeyStore()
    app = in_memory_artifacts(keys)
    artifact_id = created(app)

    keys.destroy_key(artifact_id)

    artifact = app.get_artifact(artifact_id)
    assert artifact.filename == ERASED_TEXT
    assert (artifact.size, artifact.storage_location, artifact.tenant) == (
        3,
        "ab/cd/upload",
        "alpha",
    )


def test_a_sealed_field_opens_only_for_its_own_artifact() -> None:
    keys = InMemoryKeyStore()
    app = in_memory_artifacts(keys)
    first, second = created(app), created(app, "other.pdf")
    # The second artifact's key on the first: what a copied sealed value would meet.
    keys.keys[first] = keys.keys[second]

    with pytest.raises(ValueError, match="does not open"):
        app.get_artifact(first)


def test_events_stored_before_sealing_are_read_as_they_are() -> None:
    plain = ArtifactsApplication(env=dict(IN_MEMORY_ENV))
    artifact = Artifact.create(
        filename="old.pdf",
        content_type="application/pdf",
        size=1,
        sha256="b" * 64,
        storage_location="x/y/z",
    )
    (event,) = artifact.collect_events()
    sealing_app = in_memory_artifacts()
    stored = plain.mapper.to_stored_event(event)

    read = sealing_app.mapper.to_domain_event(stored)

    assert isinstance(read, ArtifactCreated)
    assert read.filename == "old.pdf"
