"""Where the artifacts' keys live (``application.ports.KeyStore``), outside the events.

The keys go where the consumers' positions go (``TRACKING_STORE``): an SQLite file of their
own under DATA_DIR, or an ``artifact_keys`` table in PostgreSQL. A destroyed key leaves a
row without a key (a tombstone), so that no later write can make the artifact a new one.

What destroying a key does to the bytes on disk:

- SQLite: the file runs with ``secure_delete`` (SQLite overwrites what a write frees with
  zeros) in WAL mode, and a destruction ends with a TRUNCATE checkpoint, which copies the
  overwritten page into the database and empties the WAL, so the key survives in neither
  file. (A checkpoint that other readers block is retried, then left to the next one.)
- PostgreSQL keeps a deleted or updated row's old version in the table's file until VACUUM
  reclaims its space and a later write reuses it: the key is unreadable through SQL at once,
  and gone from the disk only then. A deployment that must be sure runs
  ``VACUUM FULL artifact_keys`` on a schedule (docs/deployment.md).

Lookups are cached per process (keys never change; a destroyed key leaves the cache of the
process that destroyed it at once, and of others when they evict it: a cached key opens
only events this process could already read, it is never written anywhere).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from application.ports import KeyDestroyed
from infrastructure.eventstore.shredding import new_key

_CACHED_KEYS = 4096
_CHECKPOINT_ATTEMPTS = 5


class _Cache:
    """The last keys looked up, by artifact (thread-safe; bounded)."""

    def __init__(self) -> None:
        self._keys: OrderedDict[UUID, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, artifact_id: UUID) -> bytes | None:
        with self._lock:
            key = self._keys.get(artifact_id)
            if key is not None:
                self._keys.move_to_end(artifact_id)
            return key

    def put(self, artifact_id: UUID, key: bytes) -> None:
        with self._lock:
            self._keys[artifact_id] = key
            while len(self._keys) > _CACHED_KEYS:
                self._keys.popitem(last=False)

    def drop(self, artifact_id: UUID) -> None:
        with self._lock:
            self._keys.pop(artifact_id, None)


class SQLiteKeyStore:
    """Keys in an SQLite file of their own."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cache = _Cache()
        self._local = threading.local()
        with self._connection() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS artifact_keys "
                "(artifact_id TEXT PRIMARY KEY, key BLOB, destroyed_at REAL)"
            )

    def key_for(self, artifact_id: UUID) -> bytes | None:
        if (key := self._cache.get(artifact_id)) is not None:
            return key
        row = self._row(artifact_id)
        if row is None or row[0] is None:
            return None
        self._cache.put(artifact_id, bytes(row[0]))
        return bytes(row[0])

    def create_key(self, artifact_id: UUID) -> bytes:
        if (key := self._cache.get(artifact_id)) is not None:
            return key
        # A new artifact's key is made in one statement; an existing one (or its tombstone)
        # is read after the insert did nothing.
        with self._connection() as db:
            row = db.execute(
                "INSERT INTO artifact_keys (artifact_id, key) VALUES (?, ?) "
                "ON CONFLICT (artifact_id) DO NOTHING RETURNING key",
                (str(artifact_id), new_key()),
            ).fetchone()
        if row is None:
            row = self._row(artifact_id)
        if row is None or row[0] is None:
            raise KeyDestroyed(f"the key of artifact {artifact_id} was destroyed")
        self._cache.put(artifact_id, bytes(row[0]))
        return bytes(row[0])

    def destroy_key(self, artifact_id: UUID) -> None:
        self._cache.drop(artifact_id)
        with self._connection() as db:
            db.execute(
                "INSERT INTO artifact_keys (artifact_id, key, destroyed_at) VALUES (?, NULL, ?) "
                "ON CONFLICT (artifact_id) DO UPDATE SET key = NULL, "
                "destroyed_at = coalesce(destroyed_at, excluded.destroyed_at)",
                (str(artifact_id), time.time()),
            )
        self._checkpoint()

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _row(self, artifact_id: UUID) -> Any:
        with self._connection() as db:
            return db.execute(
                "SELECT key FROM artifact_keys WHERE artifact_id = ?", (str(artifact_id),)
            ).fetchone()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA secure_delete = ON")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            self._local.connection = connection
        # Used as a context manager: each statement is its own committed transaction.
        return connection

    def _checkpoint(self) -> None:
        db = self._connection()
        for attempt in range(_CHECKPOINT_ATTEMPTS):
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.05 * (attempt + 1))


class PostgresKeyStore:
    """Keys in PostgreSQL's ``artifact_keys`` table (in POSTGRES_SCHEMA)."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self._datastore = datastore
        self._cache = _Cache()
        self._table = SQL("{}.{}").format(
            Identifier(datastore.schema or "public"), Identifier("artifact_keys")
        )
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (artifact_id uuid PRIMARY KEY, key bytea, "
                    "destroyed_at timestamptz)"
                ).format(self._table)
            )

    def key_for(self, artifact_id: UUID) -> bytes | None:
        if (key := self._cache.get(artifact_id)) is not None:
            return key
        row = self._row(artifact_id)
        if row is None or row["key"] is None:
            return None
        key = bytes(row["key"])
        self._cache.put(artifact_id, key)
        return key

    def create_key(self, artifact_id: UUID) -> bytes:
        if (key := self._cache.get(artifact_id)) is not None:
            return key
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL(
                    "INSERT INTO {} (artifact_id, key) VALUES (%s, %s) "
                    "ON CONFLICT (artifact_id) DO NOTHING RETURNING key"
                ).format(self._table),
                (artifact_id, new_key()),
            )
            row = cursor.fetchone()
        if row is None:
            row = self._row(artifact_id)
        if row is None or row["key"] is None:
            raise KeyDestroyed(f"the key of artifact {artifact_id} was destroyed")
        key = bytes(row["key"])
        self._cache.put(artifact_id, key)
        return key

    def destroy_key(self, artifact_id: UUID) -> None:
        self._cache.drop(artifact_id)
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL(
                    "INSERT INTO {} (artifact_id, key, destroyed_at) VALUES (%s, NULL, now()) "
                    "ON CONFLICT (artifact_id) DO UPDATE SET key = NULL, "
                    "destroyed_at = coalesce({}.destroyed_at, now())"
                ).format(self._table, self._table),
                (artifact_id,),
            )

    def close(self) -> None:
        self._datastore.close()

    def _row(self, artifact_id: UUID) -> Any:
        with self._datastore.transaction() as cursor:
            cursor.execute(
                SQL("SELECT key FROM {} WHERE artifact_id = %s").format(self._table),
                (artifact_id,),
            )
            return cursor.fetchone()
