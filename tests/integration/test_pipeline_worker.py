"""The pipeline worker against a real Temporal dev server, on SQLite and on PostgreSQL.

The promise under test: every ``ArtifactCreated`` becomes exactly one ``ProcessArtifactWorkflow``
run, whatever happens to the worker (killed mid-stream, restarted, replayed from zero, two
of them at once, Temporal gone for a while). Each test uses its own task queue, so the runs
it caused can be counted in Temporal's visibility store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
import structlog
from eventsourcing.utils import get_topic
from structlog.testing import capture_logs
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest, WorkflowOrchestrator
from domain.artifact import ArtifactCreated, workflow_id_for
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.di.container import default_summarizer, processing_options
from infrastructure.eventstore import application_env, tracking_recorder
from infrastructure.eventstore.dead_letters import DeadLetterStore
from infrastructure.pipeline_worker import CONSUMER, PipelineWorker
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator
from infrastructure.temporal.worker import build_worker
from tests.support import (
    Process,
    TcpProxy,
    running,
    service_env,
    settled,
    wait_until,
)

pytestmark = pytest.mark.temporal


class Pipeline:
    """One test's event store, blob store and pipeline-worker position, on real storage.

    Every ``app()`` is a separate application instance on the same store, as a separate
    process (the API, a worker) would have.
    """

    def __init__(self, settings: Settings, client: Client, tmp_path: Path) -> None:
        self.settings = settings
        self.client = client
        self.task_queue = settings.temporal_task_queue
        self.tmp_path = tmp_path
        self.blobs = LocalBlobStore(settings.blob_dir)
        self._apps: list[ArtifactsApplication] = []
        self._trackings: list[DeadLetterStore] = []
        self.uploader = self.app()
        self.tracking = self.tracking_recorder()

    def app(self) -> ArtifactsApplication:
        app = ArtifactsApplication(env=application_env(self.settings))
        self._apps.append(app)
        return app

    def tracking_recorder(self) -> DeadLetterStore:
        recorder = tracking_recorder(self.settings, CONSUMER)
        self._trackings.append(recorder)
        return recorder

    def close(self) -> None:
        for app in self._apps:
            app.close()
        for recorder in self._trackings:
            getattr(recorder, "datastore").close()  # noqa: B009 - not on the abstract type

    def upload(self, n: int) -> list[UUID]:
        """Stores ``n`` small text files as the API does and records their artifacts."""
        ids = []
        for _ in range(n):
            content = f"artifact {uuid.uuid4()}\n".encode()
            writer = self.blobs.writer()
            writer.write(content)
            blob = writer.commit()
            ids.append(
                self.uploader.create_artifact_once(
                    idempotency_key=None,
                    filename="note.txt",
                    content_type="text/plain",
                    size=blob.size,
                    sha256=hashlib.sha256(content).hexdigest(),
                    storage_location=blob.location,
                ).id
            )
        return ids

    def last_created(self) -> int:
        """The position of the last ``ArtifactCreated``: where the worker's position ends up."""
        created = self.uploader.recorder.select_notifications(
            start=1, limit=100_000, topics=[get_topic(ArtifactCreated)]
        )
        return created[-1].id

    def position(self) -> int | None:
        return self.tracking.max_tracking_id(ArtifactsApplication.name)

    def reset_position(self) -> None:
        """Forgets how far the pipeline worker got, as an operator replaying from zero would."""
        if self.settings.event_store == "sqlite":
            tracking_db = sqlite3.connect(self.settings.sqlite_tracking_path(CONSUMER))
            with contextlib.closing(tracking_db), tracking_db:
                tracking_db.execute("DELETE FROM tracking WHERE application_name = 'Artifacts'")
        else:
            with psycopg.connect(
                host=self.settings.postgres_host,
                port=self.settings.postgres_port,
                dbname=self.settings.postgres_dbname,
                user=self.settings.postgres_user,
                password=self.settings.postgres_password.get_secret_value(),
                autocommit=True,
            ) as postgres:
                postgres.execute(
                    f'DELETE FROM "{self.settings.postgres_schema}".{CONSUMER}_tracking '
                    "WHERE application_name = 'Artifacts'"
                )

    def worker(self, orchestrator: WorkflowOrchestrator | None = None) -> PipelineWorker:
        """An in-process pipeline worker with its own connections, like a separate process."""
        return PipelineWorker(
            self.app(),
            self.tracking_recorder(),
            orchestrator or self.orchestrator(),
            max_in_flight=self.settings.pipeline_max_in_flight,
        )

    def orchestrator(self) -> TemporalWorkflowOrchestrator:
        return TemporalWorkflowOrchestrator(self.client, self.task_queue)

    def pipeline_worker_process(
        self, name: str, temporal_address: str | None = None, **env: str
    ) -> Process:
        """A real ``python -m infrastructure.pipeline_worker`` on this test's stores."""
        address = temporal_address or self.client.service_client.config.target_host
        return Process.python_module(
            "infrastructure.pipeline_worker",
            env=service_env(self.settings, TEMPORAL_ADDRESS=address, **env),
            log_path=self.tmp_path / f"{name}.log",
        )

    async def workflow_ids(self) -> list[str]:
        """Every workflow execution on this test's task queue (one entry per run)."""
        query = f'TaskQueue="{self.task_queue}"'
        return [execution.id async for execution in self.client.list_workflows(query)]

    async def runs(self) -> set[tuple[str, str]]:
        """Every run on this test's task queue, as (workflow id, run id)."""
        query = f'TaskQueue="{self.task_queue}"'
        return {(run.id, run.run_id) async for run in self.client.list_workflows(query)}

    async def run_count(self) -> int:
        return (await self.client.count_workflows(f'TaskQueue="{self.task_queue}"')).count

    async def settled_run_count(self) -> int:
        """The number of runs once Temporal's (eventually consistent) visibility agrees."""
        return await settled(self.run_count, settle=1.0, timeout=30, what="the run count")

    async def assert_exactly_one_run_per_artifact(self, artifact_ids: list[UUID]) -> None:
        assert await self.settled_run_count() == len(artifact_ids)
        ids = await self.workflow_ids()
        assert sorted(ids) == sorted(workflow_id_for(artifact_id) for artifact_id in artifact_ids)

    async def wait_until_caught_up(self, timeout: float = 60) -> None:  # noqa: ASYNC109
        last = self.last_created()
        await wait_until(
            lambda: self.position() == last,
            timeout=timeout,
            what=f"the pipeline worker has recorded position {last} (at {self.position()})",
        )


@pytest.fixture
def pipeline(
    settings: Settings, temporal_dev_env: WorkflowEnvironment, tmp_path: Path
) -> Iterator[Pipeline]:
    task_queue = f"pipeline-test-{uuid.uuid4().hex[:12]}"
    pipeline = Pipeline(
        settings.model_copy(update={"temporal_task_queue": task_queue}),
        temporal_dev_env.client,
        tmp_path,
    )
    yield pipeline
    pipeline.close()


@contextlib.asynccontextmanager
async def in_process(worker: PipelineWorker) -> AsyncIterator[asyncio.Task[None]]:
    """Runs the worker as a task; leaving the block stops it and insists it stops promptly."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


@contextlib.asynccontextmanager
async def temporal_worker(pipeline: Pipeline) -> AsyncIterator[None]:
    """The real Temporal worker with the real activities, so runs complete."""
    activities = ArtifactActivities(
        pipeline.app(),
        pipeline.blobs,
        default_summarizer(pipeline.settings),
        processing_options(pipeline.settings),
    )
    with ThreadPoolExecutor(max_workers=4) as executor:
        worker = build_worker(
            pipeline.client,
            activities,
            executor,
            task_queue=pipeline.task_queue,
            max_concurrent_activities=4,
        )
        async with worker:
            yield


class RecordingOrchestrator:
    """The real orchestrator, keeping what it answered for each artifact."""

    def __init__(self, real: WorkflowOrchestrator) -> None:
        self._real = real
        self.answers: list[tuple[UUID, bool]] = []

    async def start_processing(self, request: ProcessingRequest) -> bool:
        started = await self._real.start_processing(request)
        self.answers.append((request.artifact_id, started))
        return started

    async def cancel_processing(self, artifact_id: UUID, run: int) -> None:
        await self._real.cancel_processing(artifact_id, run)

    @property
    def started(self) -> list[UUID]:
        return [artifact_id for artifact_id, started in self.answers if started]

    def asked(self) -> set[UUID]:
        return {artifact_id for artifact_id, _ in self.answers}


class UnreachableOrchestrator:
    """Fails like a lost connection to Temporal until ``reachable`` is set."""

    def __init__(self, real: WorkflowOrchestrator) -> None:
        self._real = real
        self.reachable = False
        self.attempts: list[tuple[UUID, float]] = []

    async def start_processing(self, request: ProcessingRequest) -> bool:
        self.attempts.append((request.artifact_id, time.monotonic()))
        if not self.reachable:
            raise ConnectionError("Temporal is unreachable")
        return await self._real.start_processing(request)

    async def cancel_processing(self, artifact_id: UUID, run: int) -> None:
        if not self.reachable:
            raise ConnectionError("Temporal is unreachable")
        await self._real.cancel_processing(artifact_id, run)

    def attempts_for(self, artifact_id: UUID) -> list[float]:
        return [at for attempted, at in self.attempts if attempted == artifact_id]


async def test_starts_exactly_one_run_per_artifact_and_the_runs_complete(
    pipeline: Pipeline,
) -> None:
    artifact_ids = await asyncio.to_thread(pipeline.upload, 30)

    async with temporal_worker(pipeline), in_process(pipeline.worker()):
        await pipeline.wait_until_caught_up()
        await wait_until(
            lambda: all_completed(pipeline, artifact_ids),
            timeout=60,
            what="every run has completed",
        )

    await pipeline.assert_exactly_one_run_per_artifact(artifact_ids)
    assert pipeline.position() == pipeline.last_created()
    for artifact_id in artifact_ids:
        artifact = pipeline.uploader.get_artifact(artifact_id)
        assert (artifact.status, artifact.mime_type) == ("processed", "text/plain")


async def all_completed(pipeline: Pipeline, artifact_ids: list[UUID]) -> bool:
    query = f'TaskQueue="{pipeline.task_queue}" AND ExecutionStatus="Completed"'
    return (await pipeline.client.count_workflows(query)).count == len(artifact_ids)


async def test_starts_artifacts_uploaded_while_it_runs(pipeline: Pipeline) -> None:
    async with in_process(pipeline.worker()):
        first = await asyncio.to_thread(pipeline.upload, 5)
        await pipeline.wait_until_caught_up()
        later = await asyncio.to_thread(pipeline.upload, 5)
        await pipeline.wait_until_caught_up()

    await pipeline.assert_exactly_one_run_per_artifact(first + later)


class HeldOrchestrator:
    """The real orchestrator, but the start of ``held`` waits for ``release``; counts how
    many starts are in flight at once."""

    def __init__(self, real: WorkflowOrchestrator, held: UUID) -> None:
        self._real = real
        self._held = held
        self.release = asyncio.Event()
        self.finished: list[UUID] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def start_processing(self, request: ProcessingRequest) -> bool:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if request.artifact_id == self._held:
                await self.release.wait()
            return await self._real.start_processing(request)
        finally:
            self.in_flight -= 1
            self.finished.append(request.artifact_id)

    async def cancel_processing(self, artifact_id: UUID, run: int) -> None:
        await self._real.cancel_processing(artifact_id, run)


async def test_a_slow_start_holds_the_position_but_not_the_starts_behind_it(
    pipeline: Pipeline,
) -> None:
    # 24: more than the 4 in flight (plus the queue of events read ahead), fewer than the
    # window of finished starts that may wait for the held one (4 x WINDOW).
    artifact_ids = await asyncio.to_thread(pipeline.upload, 24)
    orchestrator = HeldOrchestrator(pipeline.orchestrator(), held=artifact_ids[0])
    worker = PipelineWorker(
        pipeline.app(), pipeline.tracking_recorder(), orchestrator, max_in_flight=4
    )

    async with in_process(worker):
        # Every start behind the held one goes through, never more than 4 at once...
        await wait_until(
            lambda: len(orchestrator.finished) == len(artifact_ids) - 1,
            timeout=30,
            what="every start but the held one has finished",
        )
        # ... and none of their positions is recorded before the held start succeeded.
        assert pipeline.position() is None
        orchestrator.release.set()
        await pipeline.wait_until_caught_up()

    assert orchestrator.most_in_flight == 4
    await pipeline.assert_exactly_one_run_per_artifact(artifact_ids)


async def test_a_worker_killed_mid_stream_and_restarted_loses_no_artifact_and_doubles_none(
    pipeline: Pipeline,
) -> None:
    artifact_ids = await asyncio.to_thread(pipeline.upload, 150)
    last_before_kill = pipeline.last_created()

    # One start at a time, so the kill lands mid-stream however fast the machine is.
    first_worker = pipeline.pipeline_worker_process("first", PIPELINE_MAX_IN_FLIGHT="1")
    with running(first_worker) as first:
        await wait_until(
            lambda: pipeline.position() is not None or first.exit_code is not None,
            timeout=60,
            what="the first worker has recorded a position",
        )
        first.send(signal.SIGKILL)
        exit_code = await first.wait_for_exit(timeout=10)
        assert exit_code == -signal.SIGKILL, first.output()[-3000:]
    killed_at = pipeline.position()
    assert killed_at is not None
    assert killed_at < last_before_kill, "the worker finished before it could be killed"

    # The stream goes on while no worker runs.
    artifact_ids += await asyncio.to_thread(pipeline.upload, 50)
    runs_before_restart = await pipeline.settled_run_count()

    with running(pipeline.pipeline_worker_process("second")) as second:
        await pipeline.wait_until_caught_up()
        second.send(signal.SIGTERM)
        assert await second.wait_for_exit(timeout=15) == 0, second.output()[-3000:]

    await pipeline.assert_exactly_one_run_per_artifact(artifact_ids)
    print(
        f"\n[{pipeline.settings.event_store}] killed at position {killed_at} of "
        f"{last_before_kill}; {runs_before_restart} runs existed before the restart"
    )


async def test_a_replay_from_position_zero_starts_no_new_run(pipeline: Pipeline) -> None:
    artifact_ids = await asyncio.to_thread(pipeline.upload, 30)
    async with in_process(pipeline.worker()):
        await pipeline.wait_until_caught_up()
    assert await pipeline.settled_run_count() == 30
    runs_before = await pipeline.runs()

    pipeline.reset_position()
    assert pipeline.position() is None
    replaying = RecordingOrchestrator(pipeline.orchestrator())
    async with in_process(pipeline.worker(replaying)):
        await pipeline.wait_until_caught_up()

    assert len(replaying.answers) == 30
    assert replaying.asked() == set(artifact_ids)
    # The runs are still open, so each start joined its run (USE_EXISTING): same run ids.
    await pipeline.assert_exactly_one_run_per_artifact(artifact_ids)
    assert await pipeline.runs() == runs_before


async def test_a_replay_of_completed_runs_starts_no_new_run(pipeline: Pipeline) -> None:
    artifact_ids = await asyncio.to_thread(pipeline.upload, 10)
    async with temporal_worker(pipeline), in_process(pipeline.worker()):
        await wait_until(
            lambda: all_completed(pipeline, artifact_ids),
            timeout=60,
            what="every run has completed",
        )

    pipeline.reset_position()
    replaying = RecordingOrchestrator(pipeline.orchestrator())
    worker = pipeline.worker(replaying)
    async with in_process(worker):
        await pipeline.wait_until_caught_up()

    assert len(replaying.answers) == 10
    assert replaying.started == [], "a closed run's id is refused, so nothing is started"
    counted = worker.metrics.registry.get_sample_value
    assert counted("workflow_starts_duplicate_total") == 10
    assert counted("workflow_starts_total") == 0
    await pipeline.assert_exactly_one_run_per_artifact(artifact_ids)


async def test_while_temporal_is_unreachable_it_retries_with_backoff_and_holds_its_position(
    pipeline: Pipeline,
) -> None:
    artifact_ids = await asyncio.to_thread(pipeline.upload, 3)
    orchestrator = UnreachableOrchestrator(pipeline.orchestrator())

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with in_process(pipeline.worker(orchestrator)):
            await wait_until(
                lambda: len(orchestrator.attempts_for(artifact_ids[0])) >= 4,
                timeout=10,
                what="the first start has been tried four times",
            )
            assert pipeline.position() is None
            assert await pipeline.run_count() == 0

            orchestrator.reachable = True
            await pipeline.wait_until_caught_up()

    failed = [line for line in logs if line["event"] == "workflow_start_failed"]
    assert {line["artifact_id"] for line in failed} >= {str(artifact_ids[0])}
    for line in failed:
        assert line["workflow_id"] == f"artifact-{line['artifact_id']}"

    attempts = orchestrator.attempts_for(artifact_ids[0])
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps[:3] == sorted(gaps[:3]), f"retries do not back off: {gaps}"
    assert gaps[2] > 2 * gaps[0]
    await pipeline.assert_exactly_one_run_per_artifact(artifact_ids)


async def test_a_worker_that_lost_temporal_stops_cleanly_on_sigterm_and_later_catches_up(
    pipeline: Pipeline,
) -> None:
    target = pipeline.client.service_client.config.target_host
    proxy = TcpProxy(int(target.rsplit(":", 1)[1]))
    try:
        proxy.restore()
        address = f"127.0.0.1:{proxy.port}"
        artifact_ids = await asyncio.to_thread(pipeline.upload, 1)

        with running(pipeline.pipeline_worker_process("first", address)) as worker:
            await pipeline.wait_until_caught_up()
            held_at = pipeline.position()

            proxy.cut()
            # More than the worker holds in flight, so every queue inside it is full.
            artifact_ids += await asyncio.to_thread(pipeline.upload, 60)
            await wait_until(
                lambda: "workflow_start_failed" in worker.output(),
                timeout=30,
                what="the worker reports failing starts",
            )
            assert pipeline.position() == held_at

            sent = time.monotonic()
            worker.send(signal.SIGTERM)
            exit_code = await worker.wait_for_exit(timeout=15)
            stopped_in = time.monotonic() - sent
        assert exit_code == 0, worker.output()[-3000:]
        assert pipeline.position() == held_at
        print(f"\n[{pipeline.settings.event_store}] stopped {stopped_in:.1f} s after SIGTERM")

        proxy.restore()
        with running(pipeline.pipeline_worker_process("second", address)) as second:
            await pipeline.wait_until_caught_up()
            second.send(signal.SIGTERM)
            assert await second.wait_for_exit(timeout=15) == 0, second.output()[-3000:]
    finally:
        proxy.close()

    await pipeline.assert_exactly_one_run_per_artifact(artifact_ids)


async def test_two_workers_on_one_stream_start_one_run_per_artifact(pipeline: Pipeline) -> None:
    artifact_ids = await asyncio.to_thread(pipeline.upload, 40)
    one = RecordingOrchestrator(pipeline.orchestrator())
    other = RecordingOrchestrator(pipeline.orchestrator())

    async with in_process(pipeline.worker(one)), in_process(pipeline.worker(other)):
        # Both follow the stream, so both are asked to start what is uploaded now.
        more = await asyncio.to_thread(pipeline.upload, 20)
        await wait_until(
            lambda: set(more) <= one.asked() and set(more) <= other.asked(),
            timeout=60,
            what="both workers have asked to start every new artifact",
        )
        await pipeline.wait_until_caught_up()

    artifact_ids += more
    assert one.asked() | other.asked() == set(artifact_ids)
    await pipeline.assert_exactly_one_run_per_artifact(artifact_ids)


# Each process opens the stores as the service's entrypoints do, once all are ready to.
OPEN_STORES = """
import pathlib, sys, time
from application.artifacts import ArtifactsApplication
from infrastructure.config import Settings
from infrastructure.di.container import build_container
from infrastructure.eventstore import tracking_recorder
from infrastructure.pipeline_worker import CONSUMER
ready, go = (pathlib.Path(arg) for arg in sys.argv[1:])
settings = Settings()
ready.touch()
while not go.exists():
    time.sleep(0.001)
build_container(settings)[ArtifactsApplication]
tracking_recorder(settings, CONSUMER)
"""


async def test_processes_starting_together_on_a_fresh_store_all_open_it(
    settings: Settings, tmp_path: Path
) -> None:
    # `make dev` starts the API and both workers at once, each creating the tables it needs;
    # before the fix, all but one of them usually died with IntegrityError.
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(3)]
    processes = [
        Process(
            [sys.executable, "-c", OPEN_STORES, str(marker), str(go)],
            env=service_env(settings),
            log_path=tmp_path / f"process-{i}.log",
        )
        for i, marker in enumerate(ready)
    ]
    try:
        await wait_until(
            lambda: all(marker.exists() for marker in ready),
            timeout=30,
            what="every process is ready to open the stores",
        )
        go.touch()
        for process in processes:
            assert await process.wait_for_exit(timeout=30) == 0, process.output()[-2000:]
    finally:
        for process in processes:
            process.kill_tree()
