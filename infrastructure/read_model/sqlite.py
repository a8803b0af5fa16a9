"""The artifact list in SQLite: rows and tracking in the read model's own database file.

The file (``<DATA_DIR>/read_model.sqlite3``) holds the ``artifact_list`` table and the
read model's ``tracking`` and ``dead_letters`` tables, so one SQLite transaction covers them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from uuid import UUID

from eventsourcing.persistence import Tracking

from application.catalog import ArtifactRow
from domain.artifact import Artifact, ArtifactCreated, ArtifactStatus
from infrastructure.eventstore.sqlite import SQLiteDeadLetterTracking
from infrastructure.read_model.view import (
    SUMMARY_COLUMNS,
    ArtifactListView,
    Position,
    from_micros,
    to_micros,
)

# Times are integer microseconds since the epoch (UTC): exact, and they sort as numbers.
_CREATE = [
    "CREATE TABLE IF NOT EXISTS artifact_list ("
    "id TEXT PRIMARY KEY, "
    "filename TEXT NOT NULL, "
    "status TEXT NOT NULL, "
    "mime_type TEXT, "
    "size INTEGER NOT NULL, "
    "page_count INTEGER, "
    "failure_reason TEXT, "
    "has_summary INTEGER NOT NULL, "
    "created_at INTEGER NOT NULL, "
    "updated_at INTEGER NOT NULL, "
    "version INTEGER NOT NULL)",
    # Keyset pagination newest first walks one of these in order and stops after a page:
    # no sort, no scan of the rows it skips, however long the list grows.
    "CREATE INDEX IF NOT EXISTS artifact_list_newest ON artifact_list (created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS artifact_list_status_newest ON artifact_list "
    "(status, created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS artifact_list_mime_type_newest ON artifact_list "
    "(mime_type, created_at DESC, id DESC)",
]
_INSERT = (
    "INSERT INTO artifact_list (id, filename, status, mime_type, size, page_count, "
    "failure_reason, has_summary, created_at, updated_at, version) "
    "VALUES (:id, :filename, :status, NULL, :size, NULL, NULL, 0, :at, :at, :version) "
    "ON CONFLICT (id) DO NOTHING"
)


class SQLiteArtifactList(ArtifactListView, SQLiteDeadLetterTracking):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *_CREATE]

    def _insert_row(self, created: ArtifactCreated, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                _INSERT,
                {
                    "id": str(created.originator_id),
                    "filename": created.filename,
                    "status": ArtifactStatus.UPLOADED.value,
                    "size": created.size,
                    "at": to_micros(created.timestamp),
                    "version": created.originator_version,
                },
            )
            self._mark(c, tracking)

    def _update_row(
        self, event: Artifact.Event, changes: Mapping[str, object], tracking: Tracking
    ) -> None:
        # Column names come from the view's fixed CHANGEABLE set, never from input.
        assignments = "".join(f"{column} = :{column}, " for column in sorted(changes))
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"UPDATE artifact_list SET {assignments}"  # noqa: S608
                "updated_at = :at, version = :version "
                "WHERE id = :id AND version < :version",
                {
                    **changes,
                    "id": str(event.originator_id),
                    "at": to_micros(event.timestamp),
                    "version": event.originator_version,
                },
            )
            self._mark(c, tracking)

    def _select_rows(
        self, *, status: str | None, mime_type: str | None, after: Position | None, limit: int
    ) -> list[ArtifactRow]:
        conditions: list[str] = []
        params: dict[str, object] = {"limit": limit}
        if status is not None:
            conditions.append("status = :status")
            params["status"] = status
        if mime_type is not None:
            conditions.append("mime_type = :mime_type")
            params["mime_type"] = mime_type
        if after is not None:
            # A row value comparison: SQLite walks the index from this key on.
            conditions.append("(created_at, id) < (:after_at, :after_id)")
            params.update(after_at=to_micros(after[0]), after_id=str(after[1]))
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM artifact_list {where}"  # noqa: S608
                "ORDER BY created_at DESC, id DESC LIMIT :limit",
                params,
            )
            return [_summary(row) for row in c.fetchall()]


def _summary(row: sqlite3.Row) -> ArtifactRow:
    return ArtifactRow(
        id=UUID(row["id"]),
        filename=row["filename"],
        status=row["status"],
        mime_type=row["mime_type"],
        size=row["size"],
        page_count=row["page_count"],
        failure_reason=row["failure_reason"],
        has_summary=bool(row["has_summary"]),
        created_at=from_micros(row["created_at"]),
        updated_at=from_micros(row["updated_at"]),
    )
