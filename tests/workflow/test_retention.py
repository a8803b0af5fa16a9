"""Retention: ``EraseExpiredArtifactsWorkflow`` erases what is older than the period, through
the same path as a delete; younger artifacts, and runs in flight until they stop, are left."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from application.artifacts import ArtifactsApplication
from application.erasure import Eraser
from application.ports import ContentFacts
from domain.artifact import ArtifactStatus
from infrastructure.temporal.retention import (
    ArtifactRetention,
    EraseExpiredArtifactsWorkflow,
    RetentionInput,
)
from tests.fakes import FakeBlobStore, InMemoryKeyStore, in_memory_artifacts


class CatalogByAge:
    """``created_before`` over ids and their upload times, leaving out erased artifacts as
    the read model does (the read worker drops their rows)."""

    def __init__(self, app: ArtifactsApplication) -> None:
        self.app = app
        self.created: dict[uuid.UUID, datetime] = {}

    def created_before(self, cutoff: datetime, limit: int) -> list[uuid.UUID]:
        old = sorted(
            (at, i)
            for i, at in self.created.items()
            if at < cutoff and not self.app.get_artifact(i).erased
        )
        return [i for _, i in old[:limit]]


async def test_artifacts_older_than_the_period_are_erased_and_the_rest_left(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    keys, blobs = InMemoryKeyStore(), FakeBlobStore()
    app = in_memory_artifacts(keys)
    eraser = Eraser(app, blobs, keys)
    catalog = CatalogByAge(app)
    # The test server's clock, which the tests before this one may have skipped ahead.
    now = await time_skipping_env.get_current_time()

    def uploaded(age: timedelta, *, processed: bool = True) -> uuid.UUID:
        blob = blobs.put(b"some text")
        artifact_id = app.create_artifact_once(
            idempotency_key=None,
            filename="notes.txt",
            content_type="text/plain",
            size=blob.size,
            sha256=blob.sha256,
            storage_location=blob.location,
        ).id
        if processed:
            facts = ContentFacts(mime_type="text/plain", kind="text", page_count=None, char_count=9)
            app.record_processing_result(artifact_id, run=0, facts=facts)
        catalog.created[artifact_id] = now - age
        return artifact_id

    old = [uploaded(timedelta(days=40)) for _ in range(5)]
    running = uploaded(timedelta(days=45), processed=False)
    young = [uploaded(timedelta(days=10)) for _ in range(3)]
    task_queue = f"retention-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=2) as executor:
        async with Worker(
            time_skipping_env.client,
            task_queue=task_queue,
            workflows=[EraseExpiredArtifactsWorkflow],
            activities=ArtifactRetention(catalog, eraser).all(),
            activity_executor=executor,
        ):
            summary = await time_skipping_env.client.execute_workflow(
                EraseExpiredArtifactsWorkflow.run,
                RetentionInput(days=30, batch_size=2),
                id=f"retention-{uuid.uuid4()}",
                task_queue=task_queue,
            )

    assert {app.get_artifact(i).status for i in old} == {ArtifactStatus.ERASED}
    assert {(app.get_artifact(i).erasure or {}).get("reason") for i in old} == {"retention"}
    assert {app.get_artifact(i).status for i in young} == {ArtifactStatus.PROCESSED}
    in_flight = app.get_artifact(running)
    assert (in_flight.erasure_pending, in_flight.cancellation_requested) == (True, True)
    assert summary.erased == 5
    assert summary.pending == 1
    assert len(blobs.blobs) == 4  # the young ones' and the running one's uploads
