"""The artifact list in PostgreSQL: an ``artifact_list`` table next to the read model's
``read_model_tracking`` and ``read_model_dead_letters`` tables, all in POSTGRES_SCHEMA, so one
transaction covers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, Tracking
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composable, Identifier, Placeholder

from application.catalog import ArtifactRow
from domain.artifact import Artifact, ArtifactCreated, ArtifactErased, ArtifactStatus
from infrastructure.eventstore.postgres import PostgresDeadLetterTracking
from infrastructure.read_model.view import (
    SUMMARY_COLUMNS,
    ArtifactListView,
    Position,
)

TABLE = "artifact_list"
# As eventsourcing's own PostgreSQL recorders do: a connection the server dropped (a
# restart) fails once and is replaced, so retry on a fresh one. Writes may be retried too:
# a commit that did land makes the retry a duplicate, which the view recognises.
_reconnecting = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)


class PostgresArtifactList(ArtifactListView, PostgresDeadLetterTracking):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(TABLE))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "id uuid PRIMARY KEY, "
                "filename text NOT NULL, "
                "status text NOT NULL, "
                "mime_type text, "
                "size bigint NOT NULL, "
                "page_count integer, "
                "failure_reason text, "
                "has_summary boolean NOT NULL, "
                "created_at timestamptz NOT NULL, "
                "updated_at timestamptz NOT NULL, "
                "version bigint NOT NULL, "
                "tenant text NOT NULL DEFAULT 'default')"
            ).format(self._table)
        )
        # Tables made before tenants: their rows are the default tenant's, as their
        # events say.
        self.sql_create_statements.append(
            SQL(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default'"
            ).format(self._table)
        )
        # Keyset pagination newest first walks one of these in order and stops after a
        # page: no sort, no scan of the rows it skips, however long the list grows.
        for name, columns in (
            ("newest", ""),
            ("status_newest", "status, "),
            ("mime_type_newest", "mime_type, "),
            ("tenant_newest", "tenant, "),
        ):
            self.sql_create_statements.append(
                SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}created_at DESC, id DESC)").format(
                    Identifier(f"{TABLE}_{name}"), self._table, SQL(columns)
                )
            )
        self._insert = SQL(
            "INSERT INTO {} (id, filename, status, mime_type, size, page_count, "
            "failure_reason, has_summary, created_at, updated_at, version, tenant) "
            "VALUES (%(id)s, %(filename)s, %(status)s, NULL, %(size)s, NULL, NULL, false, "
            "%(at)s, %(at)s, %(version)s, %(tenant)s) "
            "ON CONFLICT (id) DO NOTHING"
        ).format(self._table)

    @_reconnecting
    def _insert_row(self, created: ArtifactCreated, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._insert,
                {
                    "id": created.originator_id,
                    "filename": created.filename,
                    "status": ArtifactStatus.UPLOADED.value,
                    "size": created.size,
                    "at": created.timestamp,
                    "version": created.originator_version,
                    "tenant": created.tenant,
                },
            )
            self._mark(curs, tracking)

    @_reconnecting
    def _update_row(
        self, event: Artifact.Event, changes: Mapping[str, object], tracking: Tracking
    ) -> None:
        # Column names come from the view's fixed CHANGEABLE set, never from input.
        assignments = SQL("").join(
            SQL("{} = {}, ").format(Identifier(column), Placeholder(column))
            for column in sorted(changes)
        )
        statement = SQL(
            "UPDATE {} SET {}updated_at = %(at)s, version = %(version)s "
            "WHERE id = %(id)s AND version < %(version)s"
        ).format(self._table, assignments)
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                statement,
                {
                    **changes,
                    "id": event.originator_id,
                    "at": event.timestamp,
                    "version": event.originator_version,
                },
            )
            self._mark(curs, tracking)

    @_reconnecting
    def _delete_row(self, erased: ArtifactErased, tracking: Tracking) -> None:
        # PostgreSQL reuses a deleted row's space only after VACUUM, and its WAL and
        # backups keep it as long as they are kept: the README says what erasure covers.
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL("DELETE FROM {} WHERE id = %(id)s").format(self._table),
                {"id": erased.originator_id},
            )
            self._mark(curs, tracking)

    @_reconnecting
    def _select_rows(
        self,
        *,
        tenant: str | None,
        status: str | None,
        mime_type: str | None,
        after: Position | None,
        limit: int,
    ) -> list[ArtifactRow]:
        conditions: list[Composable] = []
        params: dict[str, object] = {"limit": limit}
        if tenant is not None:
            conditions.append(SQL("tenant = %(tenant)s"))
            params["tenant"] = tenant
        if status is not None:
            conditions.append(SQL("status = %(status)s"))
            params["status"] = status
        if mime_type is not None:
            conditions.append(SQL("mime_type = %(mime_type)s"))
            params["mime_type"] = mime_type
        if after is not None:
            # A row comparison: PostgreSQL walks the index from this key on.
            conditions.append(SQL("(created_at, id) < (%(after_at)s, %(after_id)s)"))
            params.update(after_at=after[0], after_id=after[1])
        where = SQL("WHERE {} ").format(SQL(" AND ").join(conditions)) if conditions else SQL("")
        statement = SQL(
            "SELECT {} FROM {} {}ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
        ).format(SQL(SUMMARY_COLUMNS), self._table, where)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return [_summary(row) for row in curs.fetchall()]

    @_reconnecting
    def _sum_sizes(self, tenant: str) -> int:
        statement = SQL("SELECT COALESCE(SUM(size), 0) AS total FROM {} WHERE tenant = %(t)s")
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement.format(self._table), {"t": tenant})
            row = curs.fetchone()
            return int(row["total"]) if row else 0

    @_reconnecting
    def _select_created_before(self, cutoff: datetime, limit: int) -> list[UUID]:
        statement = SQL(
            "SELECT id FROM {} WHERE created_at < %(cutoff)s "
            "ORDER BY created_at, id LIMIT %(limit)s"
        ).format(self._table)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, {"cutoff": cutoff, "limit": limit})
            return [row["id"] for row in curs.fetchall()]


def _summary(row: Mapping[str, Any]) -> ArtifactRow:
    return ArtifactRow(
        id=row["id"],
        filename=row["filename"],
        status=row["status"],
        mime_type=row["mime_type"],
        size=row["size"],
        page_count=row["page_count"],
        failure_reason=row["failure_reason"],
        has_summary=row["has_summary"],
        # The session's time zone is the server's; the catalog speaks UTC.
        created_at=row["created_at"].astimezone(UTC),
        updated_at=row["updated_at"].astimezone(UTC),
        tenant=row["tenant"],
    )
