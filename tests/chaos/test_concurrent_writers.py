"""6. Fifty writers at once on one artifact: optimistic concurrency keeps its stream gapless,
and every writer's update lands after retrying, none overwritten.

Each writer is a thread with its own application (its own connection, as separate processes
would have). Each wants one failure recorded under its own reason; when the artifact already
has an outcome it first opens the next run. A lost update would show as a reason missing from
the stream, a broken guard as a version gap or two outcomes in one run.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from application.artifacts import ArtifactsApplication
from domain.artifact import Artifact
from domain.errors import ArtifactError
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from tests.chaos.stack import Figures, reader

WRITERS = 50


def test_fifty_concurrent_writers_to_one_artifact_keep_its_stream_gapless_and_lose_nothing(
    settings: Settings,
) -> None:
    owner = ArtifactsApplication(env=application_env(settings))  # creates the tables
    try:
        artifact_id = owner.create_artifact_once(
            idempotency_key=None,
            filename="contended.txt",
            content_type="text/plain",
            size=1,
            sha256="0" * 64,
            storage_location="contended",
        ).id
    finally:
        owner.close()

    started = time.monotonic()
    with ThreadPoolExecutor(WRITERS) as pool:
        attempts = list(pool.map(lambda i: _write_once(settings, artifact_id, i), range(WRITERS)))
    took = time.monotonic() - started

    app = reader(settings)
    try:
        events = list(app.repository.event_store.get(artifact_id))
    finally:
        app.close()
    versions = [e.originator_version for e in events]
    reasons = Counter(e.reason for e in events if isinstance(e, Artifact.ArtifactProcessingFailed))
    failures_per_run = Counter(
        e.run for e in events if isinstance(e, Artifact.ArtifactProcessingFailed)
    )
    Figures(
        scenario="6-concurrent-writers",
        store=settings.event_store,
        uploads=1,
        runs=len(failures_per_run),
        duplicates=sum(n - 1 for n in reasons.values()),
        lost=WRITERS - len(reasons),
        recovery_s=took,
        extra=f"writers={WRITERS} events={len(events)} attempts={sum(attempts)}",
    ).print()
    assert versions == list(range(versions[0], versions[0] + len(events))), "a gap"
    assert set(reasons) == {f"writer-{i}" for i in range(WRITERS)}, "an update was lost"
    assert set(failures_per_run.values()) == {1}, "two outcomes in one run"


def _write_once(settings: Settings, artifact_id: UUID, writer: int) -> int:
    """Records this writer's failure, opening a run first when needed; returns the attempts."""
    # One connection per writer: fifty pools of the default size would exhaust PostgreSQL's.
    env = {"CREATE_TABLE": "false", "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"}
    app = ArtifactsApplication(env={**application_env(settings), **env})
    try:
        deadline = time.monotonic() + 120
        attempts = 0
        while time.monotonic() < deadline:
            attempts += 1
            artifact = app.get_artifact(artifact_id)
            try:
                if artifact.has_outcome:
                    app.request_reprocessing(artifact_id)
                else:
                    app.record_processing_failure(
                        artifact_id, run=artifact.run, reason=f"writer-{writer}", message="chaos"
                    )
                    return attempts
            except (ArtifactError, RecordConflictError):
                continue  # another writer got there first: read again and retry
        raise AssertionError(f"writer {writer} never got its update in")
    finally:
        app.close()
