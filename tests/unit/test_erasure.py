"""Erasure: every blob deleted, the key destroyed, ``ArtifactErased`` recorded, once."""

from __future__ import annotations

import uuid

import pytest

from application.erasure import Eraser, Erasure, by_tenant
from application.ports import ContentFacts
from domain.artifact import ERASED_TEXT, ArtifactStatus
from domain.errors import AlreadyErased
from tests.fakes import FakeBlobStore, InMemoryKeyStore, in_memory_artifacts


def stored(blobs: FakeBlobStore, data: bytes) -> str:
    writer = blobs.writer()
    writer.write(data)
    return writer.commit().location


class World:
    def __init__(self) -> None:
        self.keys = InMemoryKeyStore()
        self.app = in_memory_artifacts(self.keys)
        self.blobs = FakeBlobStore()
        self.eraser = Eraser(self.app, self.blobs, self.keys)

    def upload(self) -> uuid.UUID:
        location = stored(self.blobs, b"%PDF- secret")
        return self.app.create_artifact_once(
            idempotency_key=None,
            filename="secret.pdf",
            content_type="application/pdf",
            size=12,
            sha256="c" * 64,
            storage_location=location,
            tenant="alpha",
        ).id

    def processed(self, artifact_id: uuid.UUID, run: int = 0) -> None:
        self.app.record_processing_started(artifact_id, run=run, workflow_id="w")
        facts = ContentFacts(
            mime_type="application/pdf",
            kind="pdf",
            page_count=1,
            char_count=6,
            text_locations=[stored(self.blobs, b"secret")],
            markdown_location=stored(self.blobs, b"secret"),
            chunks_location=stored(self.blobs, b"[]"),
            pages_location=stored(self.blobs, b"[]"),
        )
        self.app.record_processing_result(artifact_id, run=run, facts=facts)


def test_an_artifact_with_an_outcome_is_erased_at_once_with_every_blob_of_every_run() -> None:
    world = World()
    artifact_id = world.upload()
    world.processed(artifact_id)
    world.app.request_reprocessing(artifact_id)
    world.processed(artifact_id, run=1)
    assert len(world.blobs.blobs) == 9

    assert world.eraser.erase(artifact_id, by=by_tenant("alpha")) is Erasure.ERASED

    assert world.blobs.blobs == {}
    assert world.keys.keys[artifact_id] is None
    artifact = world.app.get_artifact(artifact_id)
    assert artifact.status is ArtifactStatus.ERASED
    assert artifact.filename == ERASED_TEXT
    assert artifact.erasure == {"by": "tenant:alpha", "reason": "request"}
    assert world.app.history(artifact_id)[-1].type == "ArtifactErased"


def test_a_second_erasure_adds_nothing() -> None:
    world = World()
    artifact_id = world.upload()
    world.app.record_processing_failure(artifact_id, run=0, reason="corrupt", message="")
    world.eraser.erase(artifact_id, by=by_tenant("alpha"))
    events = len(world.app.history(artifact_id))

    assert world.eraser.erase(artifact_id, by=by_tenant("alpha")) is Erasure.ALREADY

    assert len(world.app.history(artifact_id)) == events


def test_a_run_in_flight_is_cancelled_first_and_erasure_completes_when_it_stops() -> None:
    world = World()
    artifact_id = world.upload()
    world.app.record_processing_started(artifact_id, run=0, workflow_id="w")

    assert world.eraser.erase(artifact_id, by=by_tenant("alpha")) is Erasure.PENDING

    artifact = world.app.get_artifact(artifact_id)
    assert artifact.cancellation_requested
    assert artifact.erasure_pending
    assert len(world.blobs.blobs) == 1  # the run may still read it
    assert world.eraser.complete_pending(artifact_id) is False  # not while it runs

    world.app.record_processing_cancelled(artifact_id, run=0, reason="cancelled", message="")

    assert world.eraser.complete_pending(artifact_id) is True
    assert world.blobs.blobs == {}
    assert world.app.get_artifact(artifact_id).status is ArtifactStatus.ERASED
    assert world.eraser.complete_pending(artifact_id) is False


def test_nothing_can_be_done_to_an_erased_artifact() -> None:
    world = World()
    artifact_id = world.upload()
    world.processed(artifact_id)
    world.eraser.erase(artifact_id, by=by_tenant("alpha"))

    with pytest.raises(AlreadyErased):
        world.app.request_reprocessing(artifact_id)
    with pytest.raises(AlreadyErased):
        world.app.request_cancellation(artifact_id)
    with pytest.raises(AlreadyErased):
        world.app.record_processing_started(artifact_id, run=0, workflow_id="w")
