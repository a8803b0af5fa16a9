"""The ``backend`` fixture: every contract test runs once per event store.

SQLite and the real PostgreSQL run everywhere. EventStoreDB runs when ``EVENTSTOREDB_URI``
names a server (``esdb://localhost:2113?Tls=false``) and is reported as skipped otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.backends import Backend, eventstoredb_settings
from tests.support import TcpProxy, make_settings

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("eventstoredb", marks=pytest.mark.eventstoredb),
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "eventstoredb: needs an EventStoreDB server (EVENTSTOREDB_URI)"
    )


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    proxy: TcpProxy | None = None
    if request.param == "eventstoredb":
        settings, proxy = eventstoredb_settings(tmp_path)
    elif request.param == "postgres":
        schema = request.getfixturevalue("postgres_schema")
        # libpq reads PGAPPNAME: it marks the connections this test opens from now on in
        # pg_stat_activity (not the fixture's own, opened above), so they can be dropped.
        monkeypatch.setenv("PGAPPNAME", f"contract-{uuid.uuid4().hex[:12]}")
        settings = make_settings(tmp_path, "postgres", schema)
    else:
        settings = make_settings(tmp_path, "sqlite")
    backend = Backend(request.param, settings, proxy)
    try:
        yield backend
    finally:
        backend.close()
