"""Fixtures shared by every layer of tests: settings per event store, real servers.

What they are built from (stores, Temporal servers, launchers) is tests/support's, which
bench and the fault suite use too.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from temporalio.testing import WorkflowEnvironment

from infrastructure.config import Settings
from tests.support import SeaweedFS, make_settings, seaweedfs, start_dev_server, start_time_skipping
from tests.support import postgres_schema as fresh_postgres_schema

# Property-based tests: a few seconds locally, and the same examples on every CI run (CI=true),
# so a red build is a real finding, never a lucky draw. HYPOTHESIS_PROFILE picks one by name.
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, database=None, print_blob=True
)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

# The fault suite takes minutes per scenario: it runs when named (`make chaos`,
# `pytest tests/chaos`), never as part of a plain `pytest` or `make test`.
CHAOS = Path(__file__).parent / "chaos"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    named = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    if collection_path == CHAOS and not any(path.is_relative_to(CHAOS) for path in named):
        return True
    return None


@pytest.fixture(scope="session")
async def temporal_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the one `make dev` runs), on a free port."""
    env = await start_dev_server()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server: timers and retries take no wall time."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A real S3-compatible server (SeaweedFS) on free ports; tests keep apart by prefix."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh, empty schema in the test database, dropped afterwards."""
    with fresh_postgres_schema() as schema:
        yield schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on each event store in turn: the embedded SQLite and the real PostgreSQL."""
    schema = request.getfixturevalue("postgres_schema") if request.param == "postgres" else None
    return make_settings(tmp_path, request.param, schema)
