"""The artifact list in SQLite: rows and tracking in the read model's own database file.

The file (``<DATA_DIR>/read_model.sqlite3``) holds the ``artifact_list`` table and the
read model's ``tracking`` and ``dead_letters`` tables, so one SQLite transaction covers them.

A row holds a filename, which is personal data: once its artifact is erased the row must
be gone from every byte of the files, not only from the table. SQLite leaves a deleted
row's bytes in the freed page (or cell) and keeps the page's earlier versions in the WAL
until a checkpoint; so every write runs with ``secure_delete`` on (freed content is
overwritten with zeros), and removing a row checkpoints the WAL and truncates it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import Tracking

from application.catalog import ArtifactRow
from domain.artifact import Artifact, ArtifactCreated, ArtifactErased, ArtifactStatus
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
    "version INTEGER NOT NULL, "
    "tenant TEXT NOT NULL DEFAULT 'default')",
    # Keyset pagination newest first walks one of these in order and stops after a page:
    # no sort, no scan of the rows it skips, however long the list grows.
    "CREATE INDEX IF NOT EXISTS artifact_list_newest ON artifact_list (created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS artifact_list_status_newest ON artifact_list "
    "(status, created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS artifact_list_mime_type_newest ON artifact_list "
    "(mime_type, created_at DESC, id DESC)",
]
# After the column exists (tables made before tenants get it when the view starts): a
# tenant's list walks its part of this index in order.
_TENANT_INDEX = (
    "CREATE INDEX IF NOT EXISTS artifact_list_tenant_newest ON artifact_list "
    "(tenant, created_at DESC, id DESC)"
)
_INSERT = (
    "INSERT INTO artifact_list (id, filename, status, mime_type, size, page_count, "
    "failure_reason, has_summary, created_at, updated_at, version, tenant) "
    "VALUES (:id, :filename, :status, NULL, :size, NULL, NULL, 0, :at, :at, :version, :tenant) "
    "ON CONFLICT (id) DO NOTHING"
)

log = structlog.get_logger(__name__)


class SQLiteArtifactList(ArtifactListView, SQLiteDeadLetterTracking):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *_CREATE]

    def _create_table(self, c: Any) -> None:
        super()._create_table(c)
        c.execute("PRAGMA table_info(artifact_list)")
        if "tenant" not in {row["name"] for row in c.fetchall()}:
            # Rows from before tenants: the default tenant's, as their events say.
            c.execute("ALTER TABLE artifact_list ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'")
        c.execute(_TENANT_INDEX)

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            # A connection setting, kept by the pooled connection; set on every write
            # since the pool may hand out a new one (see the module's docstring).
            c.execute("PRAGMA secure_delete = ON")
            yield c

    def _insert_row(self, created: ArtifactCreated, tracking: Tracking) -> None:
        with self._writing() as c:
            c.execute(
                _INSERT,
                {
                    "id": str(created.originator_id),
                    "filename": created.filename,
                    "status": ArtifactStatus.UPLOADED.value,
                    "size": created.size,
                    "at": to_micros(created.timestamp),
                    "version": created.originator_version,
                    "tenant": created.tenant,
                },
            )
            self._mark(c, tracking)

    def _update_row(
        self, event: Artifact.Event, changes: Mapping[str, object], tracking: Tracking
    ) -> None:
        # Column names come from the view's fixed CHANGEABLE set, never from input.
        assignments = "".join(f"{column} = :{column}, " for column in sorted(changes))
        with self._writing() as c:
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

    def _delete_row(self, erased: ArtifactErased, tracking: Tracking) -> None:
        with self._writing() as c:
            c.execute("DELETE FROM artifact_list WHERE id = :id", {"id": str(erased.originator_id)})
            self._mark(c, tracking)
        self._checkpoint()

    def _checkpoint(self) -> None:
        # Outside any transaction, as SQLite requires. TRUNCATE waits for writers; a reader
        # still on an older snapshot can keep it from finishing (busy = 1), in which case
        # the next removal's checkpoint (or SQLite's automatic ones) copies the rest.
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy = cursor.fetchone()[0]
        if busy:
            log.warning("read_model_checkpoint_incomplete")

    def _select_rows(
        self,
        *,
        tenant: str | None,
        status: str | None,
        mime_type: str | None,
        after: Position | None,
        limit: int,
    ) -> list[ArtifactRow]:
        conditions: list[str] = []
        params: dict[str, object] = {"limit": limit}
        if tenant is not None:
            conditions.append("tenant = :tenant")
            params["tenant"] = tenant
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

    def _sum_sizes(self, tenant: str) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT COALESCE(SUM(size), 0) FROM artifact_list WHERE tenant = :tenant",
                {"tenant": tenant},
            )
            return int(c.fetchone()[0])

    def _select_created_before(self, cutoff: datetime, limit: int) -> list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT id FROM artifact_list WHERE created_at < :cutoff "
                "ORDER BY created_at, id LIMIT :limit",
                {"cutoff": to_micros(cutoff), "limit": limit},
            )
            return [UUID(row["id"]) for row in c.fetchall()]


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
        tenant=row["tenant"],
    )
