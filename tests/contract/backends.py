"""The event stores the contract suite runs on, and a recording orchestrator.

An EventStoreDB database outlives test runs and is shared by all tests, so there every
test's consumers start at the head of the store, as a consumer deployed onto an existing
store would be told to; on SQLite and PostgreSQL each test has a store of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from pydantic import SecretStr

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest, WorkflowOrchestrator
from infrastructure.config import Settings
from infrastructure.eventstore import application_env, tracking_recorder
from infrastructure.eventstore.dead_letters import DeadLetterStore
from infrastructure.pipeline_worker import CONSUMER, PipelineWorker
from tests.support import POSTGRES, TcpProxy


class Backend:
    """One test's event store and consumer positions; closes what it opened.

    Each ``app()`` and ``tracking()`` is a separate instance with its own connections, as a
    separate process (the API, a worker) would have.
    """

    def __init__(self, name: str, settings: Settings, proxy: TcpProxy | None = None) -> None:
        self.name = name
        self.settings = settings
        self._proxy = proxy
        self._closers: list[Callable[[], None]] = []
        self.writer = self.app()
        # Where a new consumer starts: None on a fresh store, the head on a shared one.
        self.start = self.writer.recorder.max_notification_id() if name == "eventstoredb" else None

    def app(self, **env: str) -> ArtifactsApplication:
        """An application of its own on the backend; ``env`` overrides its environment."""
        app = ArtifactsApplication(env={**application_env(self.settings), **env})
        self._closers.append(app.close)
        return app

    def tracking(self, consumer: str = CONSUMER) -> DeadLetterStore:
        recorder = tracking_recorder(self.settings, consumer)
        self._closers.append(getattr(recorder, "datastore").close)  # noqa: B009
        if self.start is not None and recorder.max_tracking_id(ArtifactsApplication.name) is None:
            recorder.insert_tracking(Tracking(ArtifactsApplication.name, self.start))
        return recorder

    def worker(
        self, orchestrator: WorkflowOrchestrator, *, stall_seconds: float = 30.0
    ) -> PipelineWorker:
        """A pipeline worker with its own connections, as a separate process would have."""
        return PipelineWorker(
            self.app(), self.tracking(), orchestrator, stall_seconds=stall_seconds
        )

    def upload(self, n: int) -> list[uuid.UUID]:
        """Records ``n`` new artifacts, as the API does after storing their blobs."""
        return [
            self.writer.create_artifact_once(
                idempotency_key=None,
                filename=f"file-{i}.txt",
                content_type="text/plain",
                size=1,
                sha256="0" * 64,
                storage_location=f"blobs/{uuid.uuid4().hex}",
            ).id
            for i in range(n)
        ]

    def drop_connections(self) -> None:
        """Ends the store's connections from outside, as a server restart does."""
        if self.name == "postgres":
            # Every connection this test process opened carries its own application_name.
            with _pg_admin() as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (os.environ["PGAPPNAME"],),
                )
        elif self.name == "eventstoredb":
            if self._proxy is None:
                pytest.skip("dropping connections needs a Tls=false EVENTSTOREDB_URI")
            self._proxy.cut()
            self._proxy.restore()
        else:
            pytest.skip("an embedded SQLite file has no connection to drop")

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        if self._proxy is not None:
            self._proxy.close()


class RecordingOrchestrator:
    """The ``WorkflowOrchestrator`` port: records every request, starts each artifact once.

    Like the real one, a repeated start for an artifact returns False and starts nothing.
    """

    def __init__(self) -> None:
        self.requests: list[ProcessingRequest] = []
        self.started: list[uuid.UUID] = []
        self.cancelled: list[tuple[uuid.UUID, int]] = []
        self._lock = threading.Lock()

    async def start_processing(self, request: ProcessingRequest) -> bool:
        with self._lock:
            self.requests.append(request)
            if request.artifact_id in self.started:
                return False
            self.started.append(request.artifact_id)
            return True

    async def cancel_processing(self, artifact_id: uuid.UUID, run: int) -> None:
        with self._lock:
            self.cancelled.append((artifact_id, run))

    def requested(self, ids: list[uuid.UUID]) -> bool:
        asked = {request.artifact_id for request in self.requests}
        return all(i in asked for i in ids)


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    return POSTGRES.connect(application_name="contract-admin")


def eventstoredb_settings(tmp_path: Path) -> tuple[Settings, TcpProxy | None]:
    uri = os.environ.get("EVENTSTOREDB_URI")
    if not uri:
        pytest.skip("EVENTSTOREDB_URI is not set")
    proxy = None
    parts = urlsplit(uri)
    local = parts.hostname in ("localhost", "127.0.0.1") and parts.port is not None
    if local and "tls=false" in parts.query.lower():
        # Through a local relay, so that a test can cut the connection and restore it.
        assert parts.port is not None
        proxy = TcpProxy(parts.port)
        proxy.restore()
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo + '@' if userinfo else ''}127.0.0.1:{proxy.port}"
        uri = urlunsplit(parts._replace(netloc=netloc))
    settings = Settings(
        data_dir=tmp_path / "data",
        event_store="kurrentdb",
        kurrentdb_uri=SecretStr(uri),
        tracking_store="sqlite",
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings, proxy


class Worker(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    """Runs the worker until the block ends, then stops it as SIGTERM would."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


class Tally(Aggregate):
    """A stream that takes any number of events, none of which a consumer follows.

    The contract is about the store, not the Artifact's rules: this lets tests race many
    writers on one stream and put events the consumers skip between the ones they take.
    """

    INITIAL_VERSION = 0  # as Artifact: EventStoreDB numbers stream positions from 0

    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @event("Counted")
    def count_one(self) -> None:
        self.count += 1
