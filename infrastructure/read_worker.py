"""``read_worker``: keeps the read model (the artifact list) up to date with the event store.

eventsourcing's projection machinery does the work: its projection runner subscribes to the
``Artifacts`` application sequence after the position the view has recorded, and on its
own thread feeds each event with its tracking record to ``ArtifactListProjection``, whose
view writes the row change and the tracking record in one transaction. So each event
changes the view exactly once, and a restart resumes exactly where the last commit left off.

Which runner: ``BaseProjectionRunner``, the part of ``ProjectionRunner`` that takes a built
projection and view. ``ProjectionRunner`` itself would build a second view from prefixed
environment variables, bypassing ``artifact_catalog`` (the one place that chooses the
view's store) and leaving no way to see the runner's progress.

Why the follower helper too: a runner cannot resubscribe. When its subscription fails (a
PostgreSQL restart, EventStoreDB dropping a catch-up subscription) or ends, it stops, and
when the subscription stalls silently it never notices. So each runner is one *session* of
``infrastructure.eventstore.following.follow``, as the pipeline worker's subscriptions are:
a session that fails, ends or stalls is replaced by a new runner from the recorded position,
after a backoff, and the worker keeps running.

Stopping: SIGTERM or SIGINT sets the stop event; the session stops its runner (its
subscription ends, its thread finishes the event in hand, which is committed with its
position or not at all), waits for the runner's threads, and the process exits 0. A runner
thread stuck in a database call holds the exit until that call returns or times out.

Run: ``python -m infrastructure.read_worker`` (``make run-read-worker``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Mapping
from typing import Any

import structlog
from eventsourcing.persistence import ApplicationRecorder, Tracking
from eventsourcing.projection import BaseProjectionRunner

from application.artifacts import ArtifactsApplication
from infrastructure.config import Settings
from infrastructure.di.container import build_container
from infrastructure.eventstore import application_env, created_alongside_others
from infrastructure.eventstore.following import Progress, follow
from infrastructure.healthcheck import beat, heartbeat_path
from infrastructure.logging import configure_logging
from infrastructure.metrics import ConsumerMetrics, serve_metrics, watch_lag
from infrastructure.read_model import (
    APPLICATION,
    CONSUMER,
    ArtifactListProjection,
    ArtifactListView,
    artifact_catalog,
)
from infrastructure.signals import stop_on_signals

log = structlog.get_logger(__name__)

PROCESS = "read_worker"
Runner = BaseProjectionRunner[ArtifactsApplication]


class _ReportingProjection(ArtifactListProjection):
    """The projection, telling the session's stall watch what it received and finished."""

    def __init__(self, view: ArtifactListView, progress: Progress) -> None:
        super().__init__(view)
        self._progress = progress

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self._progress.received = tracking.notification_id
        super().process_event(domain_event, tracking)
        self._progress.recorded = tracking.notification_id


class ReadWorker:
    def __init__(
        self,
        view: ArtifactListView,
        app_env: Mapping[str, str],
        recorder: ApplicationRecorder,
        *,
        stall_seconds: float = 30.0,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        """``app_env`` configures each runner's own ``ArtifactsApplication``; ``recorder``
        (the event store's) is where the stall watch looks for events left waiting."""
        self._view = view
        self._app_env = dict(app_env)
        self._recorder = recorder
        self._stall_seconds = stall_seconds
        self.metrics = metrics or ConsumerMetrics(PROCESS)

    @property
    def position(self) -> int | None:
        """The last position the view recorded (a notification id of the application)."""
        return self._view.max_tracking_id(APPLICATION)

    async def run(self, stop: asyncio.Event) -> None:
        """Projects events until ``stop`` is set, resubscribing whenever a runner ends."""
        log.info("read_worker_started", position=await asyncio.to_thread(lambda: self.position))
        try:
            await follow(
                self._session,
                stop,
                consumer=CONSUMER,
                recorder=self._recorder,
                topics=ArtifactListProjection.topics,
                stall_seconds=self._stall_seconds,
            )
        finally:
            try:
                position = await asyncio.to_thread(lambda: self.position)
            except Exception:  # the store is away; the position is safe where it is
                position = None
            log.info("read_worker_stopped", position=position)

    async def _session(self, end: asyncio.Event, progress: Progress) -> None:
        """One runner: from the recorded position until ``end`` is set or it stops."""
        runner = await self._start_runner(end, progress)
        if runner is None:
            return
        log.info("read_worker_subscribed", position=progress.recorded)
        ending = asyncio.ensure_future(end.wait())
        # The runner sets is_interrupted when it is stopped and when its thread ended.
        runner_stopped = asyncio.ensure_future(asyncio.to_thread(runner.is_interrupted.wait))
        try:
            await asyncio.wait({ending, runner_stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            runner.stop()
            ending.cancel()
            await asyncio.gather(ending, runner_stopped, return_exceptions=True)
            # Joins the runner's threads, closes its application, and re-raises the error
            # that ended its thread, if one did: then ``follow`` resubscribes.
            await asyncio.to_thread(runner.__exit__, None, None, None)

    async def _start_runner(self, end: asyncio.Event, progress: Progress) -> Runner | None:
        # Subscribing is a network call on PostgreSQL and EventStoreDB, and can hang. It runs
        # on a daemon thread so that a stop is never held up by it: a runner that arrives
        # after the session gave up waiting is stopped at once.
        started: concurrent.futures.Future[Runner] = concurrent.futures.Future()

        def start() -> None:
            try:
                started.set_result(self._new_runner(progress))
            except BaseException as err:
                started.set_exception(err)

        threading.Thread(target=start, name=f"{PROCESS}-subscribe", daemon=True).start()
        starting = asyncio.wrap_future(started)
        ending = asyncio.ensure_future(end.wait())
        waiters: set[asyncio.Future[Any]] = {starting, ending}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ending.cancel()
        if starting.done():
            return starting.result()
        started.add_done_callback(_stop_late_runner)
        return None

    def _new_runner(self, progress: Progress) -> Runner:
        # Marked subscribed before subscribing: a subscription that hangs while events wait
        # is then a stall, which the watch ends.
        progress.start_at(self.position)
        return created_alongside_others(
            lambda: BaseProjectionRunner(
                projection=_ReportingProjection(self._view, progress),
                application_class=ArtifactsApplication,
                tracking_recorder=self._view,
                topics=ArtifactListProjection.topics,
                env=self._app_env,
            )
        )


def _stop_late_runner(started: concurrent.futures.Future[Runner]) -> None:
    if not started.cancelled() and started.exception() is None:
        started.result().stop()


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    asyncio.run(_main(settings))


async def _main(settings: Settings) -> None:
    stop = stop_on_signals()
    container = build_container(settings)
    recorder = await asyncio.to_thread(lambda: container[ArtifactsApplication].recorder)
    view = await asyncio.to_thread(artifact_catalog, settings)
    worker = ReadWorker(
        view,
        application_env(settings),
        recorder,
        stall_seconds=settings.subscription_stall_seconds,
    )
    serve_metrics(worker.metrics.registry, settings.metrics_host, settings.read_worker_metrics_port)
    helpers = [
        asyncio.create_task(beat(heartbeat_path(settings, PROCESS), stop)),
        asyncio.create_task(
            watch_lag(
                worker.metrics,
                recorder,
                ArtifactListProjection.topics,
                lambda: worker.position,
                stop,
            )
        ),
    ]
    try:
        await worker.run(stop)
    finally:
        for helper in helpers:
            helper.cancel()
        view.close()


if __name__ == "__main__":
    main()
