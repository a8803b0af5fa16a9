"""What a scenario runs on: SQLite in a fresh directory, PostgreSQL in a fresh schema, and a
Temporal dev server in memory."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from temporalio.testing import WorkflowEnvironment

from infrastructure.config import Settings
from infrastructure.temporal.models import SEARCH_ATTRIBUTES

# The same server the tests use (tests/conftest.py): 127.0.0.1:5432, database "test".
PG = {
    "host": os.environ.get("TEST_POSTGRES_HOST", "127.0.0.1"),
    "port": int(os.environ.get("TEST_POSTGRES_PORT", "5432")),
    "dbname": os.environ.get("TEST_POSTGRES_DBNAME", "test"),
    "user": os.environ.get("TEST_POSTGRES_USER", "postgres"),
    "password": os.environ.get("TEST_POSTGRES_PASSWORD", ""),
}


def postgres_reachable() -> bool:
    try:
        psycopg.connect(**PG, connect_timeout=2).close()  # type: ignore[arg-type]
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def fresh_settings(
    root: Path, store: str, *, temporal_address: str, task_queue: str
) -> Iterator[Settings]:
    """Settings on an empty store (a new data directory; a new schema, dropped afterwards)."""
    data_dir = root / uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "data_dir": data_dir,
        "event_store": store,
        "temporal_address": temporal_address,
        "temporal_task_queue": task_queue,
    }
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    if store == "postgres":
        values.update(
            postgres_host=PG["host"],
            postgres_port=PG["port"],
            postgres_dbname=PG["dbname"],
            postgres_user=PG["user"],
            postgres_password=PG["password"],
            postgres_schema=schema,
        )
        with psycopg.connect(**PG, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'CREATE SCHEMA "{schema}"')
    settings = Settings(**values)  # type: ignore[arg-type]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield settings
    finally:
        if store == "postgres":
            with psycopg.connect(**PG, autocommit=True) as conn:  # type: ignore[arg-type]
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def temporal_dev_server() -> WorkflowEnvironment:
    """The venv's ``temporal`` dev server on a free port, its state in memory (it is given no
    --db-filename), the workflow's search attributes registered."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        ui=False,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
    )
