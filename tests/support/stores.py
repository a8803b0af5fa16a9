"""The stores tests, bench and the fault suite run on: SQLite in a fresh data directory,
PostgreSQL in a fresh schema of the test database."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from infrastructure.config import Settings


@dataclass(frozen=True)
class PostgresServer:
    """Where the test database is, from ``TEST_POSTGRES_*`` (CI and developer machines have
    one on 127.0.0.1:5432, database ``test``)."""

    host: str
    port: int
    dbname: str
    user: str
    password: str

    @classmethod
    def from_environment(cls) -> PostgresServer:
        return cls(
            host=os.environ.get("TEST_POSTGRES_HOST", "127.0.0.1"),
            port=int(os.environ.get("TEST_POSTGRES_PORT", "5432")),
            dbname=os.environ.get("TEST_POSTGRES_DBNAME", "test"),
            user=os.environ.get("TEST_POSTGRES_USER", "postgres"),
            password=os.environ.get("TEST_POSTGRES_PASSWORD", ""),
        )

    def connect(self, **options: Any) -> psycopg.Connection[tuple[Any, ...]]:
        """An autocommit connection, for set-up and inspection beside the service's own."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password,
            autocommit=True,
            **options,
        )

    def settings(self, schema: str) -> dict[str, Any]:
        """The ``Settings`` fields that point the service at ``schema`` of this database."""
        return {
            "postgres_host": self.host,
            "postgres_port": self.port,
            "postgres_dbname": self.dbname,
            "postgres_user": self.user,
            "postgres_password": self.password,
            "postgres_schema": schema,
        }


POSTGRES = PostgresServer.from_environment()


def postgres_reachable() -> bool:
    try:
        POSTGRES.connect(connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def postgres_schema(prefix: str = "test") -> Iterator[str]:
    """A fresh, empty schema in the test database, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with POSTGRES.connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def store_settings(
    data_dir: Path, event_store: str, schema: str | None = None, **values: Any
) -> Settings:
    """Settings on ``event_store`` with data in ``data_dir`` (created), on PostgreSQL in
    ``schema``; ``values`` are further fields. The environment still applies beneath them,
    as it does for the service."""
    # Validated as the environment would be: a test may name any store, even a wrong one.
    values["event_store"] = event_store
    if event_store == "postgres":
        assert schema is not None
        values.update(POSTGRES.settings(schema))
    settings = Settings(data_dir=data_dir, **values)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def make_settings(tmp_path: Path, event_store: str, schema: str | None = None) -> Settings:
    """Settings for one test: its own data directory, its own PostgreSQL schema."""
    return store_settings(tmp_path / "data", event_store, schema, sqlite_poll_interval=0.05)


@contextlib.contextmanager
def fresh_settings(
    root: Path, store: str, *, temporal_address: str, task_queue: str
) -> Iterator[Settings]:
    """Settings on an empty store (a new data directory; a new schema, dropped afterwards)."""
    data_dir = root / uuid.uuid4().hex[:8]
    values = {"temporal_address": temporal_address, "temporal_task_queue": task_queue}
    if store != "postgres":
        yield store_settings(data_dir, store, **values)
        return
    with postgres_schema("bench") as schema:
        yield store_settings(data_dir, store, schema, **values)
