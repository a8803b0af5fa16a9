"""Stored events a consumer cannot decode, as a deploy that renamed a class or a corrupted row
leaves them: for the dead-letter tests and the fault suite."""

from __future__ import annotations

import uuid
from dataclasses import replace

from eventsourcing.persistence import StoredEvent

from application.artifacts import ArtifactsApplication
from domain.artifact import Artifact

CORRUPT_STATE = b"\x00 not an event \xff"


def artifact_created(app: ArtifactsApplication) -> StoredEvent:
    """A well-formed ``ArtifactCreated`` of a new artifact, as ``app`` would store it."""
    artifact = Artifact(
        id=uuid.uuid4(),
        filename="undecodable.txt",
        content_type="text/plain",
        size=1,
        sha256="0" * 64,
        storage_location=f"blobs/{uuid.uuid4().hex}",
        tenant="default",
    )
    (created,) = artifact.collect_events()
    return app.mapper.to_stored_event(created)


def insert_undecodable_created(app: ArtifactsApplication) -> tuple[StoredEvent, int]:
    """Appends an ``ArtifactCreated`` whose state does not decode; returns the well-formed
    event it stands for (to repair it with) and its position in the application sequence."""
    good = artifact_created(app)
    positions = app.recorder.insert_events([replace(good, state=CORRUPT_STATE)])
    assert positions, "the store returned no notification id"
    return good, positions[-1]


def repair(app: ArtifactsApplication, good: StoredEvent) -> None:
    """Writes ``good``'s state back over its corrupted row: the cause fixed (SQLite and
    PostgreSQL event stores)."""
    recorder = app.recorder
    table = getattr(recorder, "events_table_name")  # noqa: B009 - both recorders have it
    # eventsourcing's SQLite recorder stores a UUID as its hex digits.
    key = (good.state, uuid.UUID(str(good.originator_id)).hex, good.originator_version)
    datastore = getattr(recorder, "datastore")  # noqa: B009
    if hasattr(datastore, "schema"):
        from psycopg.sql import SQL, Identifier

        statement = SQL(
            "UPDATE {}.{} SET state = %s WHERE originator_id = %s AND originator_version = %s"
        ).format(Identifier(datastore.schema), Identifier(table))
        with datastore.transaction(commit=True) as curs:
            curs.execute(statement, (good.state, good.originator_id, good.originator_version))
    else:
        with datastore.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
                key,
            )
