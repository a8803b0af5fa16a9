"""A consumer outlives its subscription: a dropped connection, a failing store or a
silent stall ends in a new subscription from the recorded position, never in an exit."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic
from pydantic import SecretStr
from structlog.testing import capture_logs

from application.artifacts import ArtifactsApplication
from domain.artifact import ArtifactCreated
from infrastructure.config import Settings
from infrastructure.eventstore import application_env, tracking_recorder
from infrastructure.eventstore.following import Progress, StallWatch
from infrastructure.eventstore.sqlite import SubscribableSQLiteApplicationRecorder
from infrastructure.pipeline_worker import CONSUMER, PipelineWorker
from tests.contract.backends import Backend, RecordingOrchestrator, Tally, running
from tests.support import free_port, wait_until

CREATED = [get_topic(ArtifactCreated)]


def logged(logs: list[MutableMapping[str, Any]], event: str) -> bool:
    return any(entry["event"] == event for entry in logs)


async def test_a_worker_resubscribes_after_its_connections_are_dropped(backend: Backend) -> None:
    if backend.name == "sqlite":
        pytest.skip("an embedded SQLite file has no connection to drop; see the next test")
    orchestrator = RecordingOrchestrator()
    with capture_logs() as logs:
        async with running(backend.worker(orchestrator)) as task:
            before = backend.upload(1)
            await wait_until(lambda: orchestrator.requested(before), timeout=20, what="a start")

            backend.drop_connections()
            await wait_until(
                lambda: logged(logs, "subscription_resubscribed"), timeout=20, what="resubscribed"
            )
            after = backend.upload(2)
            await wait_until(lambda: orchestrator.requested(after), timeout=20, what="2 starts")
            assert not task.done()

    assert sorted(orchestrator.started) == sorted(before + after)


@contextlib.contextmanager
def events_table_gone(backend: Backend) -> Iterator[None]:
    """Takes the SQLite events table away from every reader, and puts it back."""
    with contextlib.closing(sqlite3.connect(backend.settings.sqlite_path)) as db:
        db.execute("ALTER TABLE stored_events RENAME TO stored_events_away")
        db.commit()
        try:
            yield
        finally:
            db.execute("ALTER TABLE stored_events_away RENAME TO stored_events")
            db.commit()


async def test_a_worker_resubscribes_after_its_store_failed_for_a_while(backend: Backend) -> None:
    if backend.name != "sqlite":
        pytest.skip("the store is made to fail through SQLite's file; servers drop connections")
    orchestrator = RecordingOrchestrator()
    with capture_logs() as logs:
        async with running(backend.worker(orchestrator)) as task:
            before = backend.upload(1)
            await wait_until(lambda: orchestrator.requested(before), timeout=20, what="a start")

            with events_table_gone(backend):
                await wait_until(
                    lambda: logged(logs, "subscription_lost"), timeout=20, what="the failure"
                )
            after = backend.upload(2)
            await wait_until(lambda: orchestrator.requested(after), timeout=20, what="2 starts")
            assert not task.done()

    assert logged(logs, "subscription_resubscribed")
    assert sorted(orchestrator.started) == sorted(before + after)


async def test_a_stalled_subscription_is_noticed_and_replaced(backend: Backend) -> None:
    if backend.name != "sqlite":
        pytest.skip("a stall is made by slowing SQLite's polling; see the StallWatch tests")
    orchestrator = RecordingOrchestrator()
    app = backend.app()
    # After its first look, this subscription would not look again for an hour: a stall.
    assert isinstance(app.recorder, SubscribableSQLiteApplicationRecorder)
    app.recorder.poll_interval = 3600
    worker = PipelineWorker(app, backend.tracking(), orchestrator, stall_seconds=0.4)
    before = backend.upload(1)

    with capture_logs() as logs:
        async with running(worker):
            await wait_until(lambda: orchestrator.requested(before), timeout=20, what="a start")
            after = backend.upload(1)
            waited = await wait_until(
                lambda: orchestrator.requested(after), timeout=20, what="the stalled event"
            )

    assert logged(logs, "subscription_stalled")
    assert waited < 10  # the resubscription found it, not the hourly poll


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_stall_watch_flags_only_followed_events_left_waiting_by_an_idle_consumer(
    backend: Backend,
) -> None:
    clock = Clock()
    watch = StallWatch(backend.app().recorder, CREATED, stall_seconds=30, clock=clock)
    backend.upload(1)
    progress = Progress()
    progress.start_at(backend.writer.recorder.max_notification_id())

    # Caught up; later events it does not follow are no reason to resubscribe.
    backend.writer.save(Tally())
    clock.now += 60
    assert not watch.stalled(progress)
    clock.now += 60
    assert not watch.stalled(progress)

    # A followed event waits; the consumer is idle; only after stall_seconds is it a stall.
    backend.upload(1)
    assert not watch.stalled(progress)
    clock.now += 29
    assert not watch.stalled(progress)
    clock.now += 2
    assert watch.stalled(progress)

    # A busy consumer (delivered, not yet recorded) is slow downstream, not stalled.
    progress.received = (progress.recorded or 0) + 1
    clock.now += 60
    assert not watch.stalled(progress)


async def test_a_worker_whose_eventstoredb_is_unreachable_keeps_trying_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    # Runs everywhere, server or not: the EventStoreDB wiring up to the connection itself.
    settings = Settings(
        data_dir=tmp_path,
        event_store="kurrentdb",
        kurrentdb_uri=SecretStr(f"esdb://127.0.0.1:{free_port()}?Tls=false"),
    )
    app = ArtifactsApplication(env=application_env(settings))
    tracking = tracking_recorder(settings, CONSUMER)  # SQLite: EventStoreDB has no tracking
    worker = PipelineWorker(app, tracking, RecordingOrchestrator())
    try:
        with capture_logs() as logs:
            async with running(worker) as task:
                await wait_until(
                    lambda: sum(e["event"] == "subscription_lost" for e in logs) >= 2,
                    timeout=20,
                    what="two failed subscriptions",
                )
                assert not task.done()
        assert "ServiceUnavailable" in str(logs)
    finally:
        app.close()
        getattr(tracking, "datastore").close()  # noqa: B009 - not on the abstract type
