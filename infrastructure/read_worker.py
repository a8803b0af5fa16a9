"""``read_worker``: keeps the read model (the artifact list) up to date with the event store.

Each session subscribes to the ``Artifacts`` application sequence (eventsourcing's
``ApplicationSubscription``) after the position the view has recorded, and on its own thread
feeds each event with its tracking record to ``ArtifactListProjection``, whose view writes
the row change and the tracking record in one transaction. So each event changes the view
exactly once, and a restart resumes exactly where the last commit left off.

Why not eventsourcing's projection runners: each builds (and closes) an application of its
own, a second one per session beside the process's; and ``ProjectionRunner`` would also
build a second view from prefixed environment variables, bypassing ``artifact_catalog``
(the one place that chooses the view's store). The loop they run is the few lines below.

Sessions come from ``infrastructure.eventstore.following.follow``, as the pipeline worker's
do: a subscription that fails (a PostgreSQL restart, EventStoreDB dropping a catch-up
subscription), ends or stalls silently is replaced by a new one from the recorded position,
after a backoff, and the worker keeps running.

Stopping: SIGTERM or SIGINT sets the stop event; the session stops its subscription, its
thread finishes the event in hand (committed with its position or not at all) and ends, and
the process exits 0. A thread stuck in a database call holds the exit until that call
returns or times out.

Run: ``python -m infrastructure.read_worker`` (``make run-read-worker``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import structlog
from eventsourcing.persistence import Tracking
from eventsourcing.projection import ApplicationSubscription

from application.artifacts import ArtifactsApplication
from infrastructure.eventstore.consumer import Consumer
from infrastructure.eventstore.following import Progress
from infrastructure.metrics import ConsumerMetrics
from infrastructure.read_model import APPLICATION, ArtifactListProjection, ArtifactListView
from infrastructure.signals import run_process

log = structlog.get_logger(__name__)

CONSUMER = "read_worker"
Subscription = ApplicationSubscription[Any]


class _ReportingProjection(ArtifactListProjection):
    """The projection, telling the session's stall watch what it received and finished."""

    def __init__(self, view: ArtifactListView, progress: Progress) -> None:
        super().__init__(view)
        self._progress = progress

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self._progress.received = tracking.notification_id
        super().process_event(domain_event, tracking)
        self._progress.recorded = tracking.notification_id


class ReadWorker(Consumer):
    name = CONSUMER
    topics = ArtifactListProjection.topics

    def __init__(
        self,
        view: ArtifactListView,
        artifacts: ArtifactsApplication,
        *,
        stall_seconds: float = 30.0,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        """``artifacts`` is the process's one application: every session subscribes to it."""
        super().__init__(artifacts, stall_seconds=stall_seconds, metrics=metrics)
        self._view = view

    @property
    def position(self) -> int | None:
        return self._view.max_tracking_id(APPLICATION)

    async def _session(self, end: asyncio.Event, progress: Progress) -> None:
        subscription = await self._subscribe(end, progress)
        if subscription is None:
            return
        log.info("read_worker_subscribed", position=progress.recorded)
        failures: list[BaseException] = []
        projecting = threading.Thread(
            target=_project,
            args=(subscription, _ReportingProjection(self._view, progress), failures),
            name=f"{CONSUMER}-projection",
            daemon=True,
        )
        projecting.start()
        ending = asyncio.ensure_future(end.wait())
        projected = asyncio.ensure_future(asyncio.to_thread(projecting.join))
        try:
            await asyncio.wait({ending, projected}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # The thread finishes the event in hand, which is committed with its position
            # or not at all, and ends.
            subscription.stop()
            ending.cancel()
            await asyncio.gather(ending, projected, return_exceptions=True)
            # Waits for the subscription's own threads (PostgreSQL's listener, say).
            await asyncio.to_thread(subscription.__exit__, None, None, None)
        if failures:  # then ``follow`` resubscribes
            raise failures[0]

    async def _subscribe(self, end: asyncio.Event, progress: Progress) -> Subscription | None:
        # Subscribing is a network call on PostgreSQL and EventStoreDB, and can hang. It runs
        # on a daemon thread so that a stop is never held up by it: a subscription that
        # arrives after the session gave up waiting is stopped at once.
        started: concurrent.futures.Future[Subscription] = concurrent.futures.Future()

        def subscribe() -> None:
            try:
                started.set_result(self._new_subscription(progress))
            except BaseException as err:
                started.set_exception(err)

        threading.Thread(target=subscribe, name=f"{CONSUMER}-subscribe", daemon=True).start()
        starting = asyncio.wrap_future(started)
        ending = asyncio.ensure_future(end.wait())
        waiters: set[asyncio.Future[Any]] = {starting, ending}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ending.cancel()
        if starting.done():
            return starting.result()
        started.add_done_callback(_stop_late_subscription)
        return None

    def _new_subscription(self, progress: Progress) -> Subscription:
        position = self.position
        # Marked subscribed before subscribing: a subscription that hangs while events wait
        # is then a stall, which the watch ends.
        progress.start_at(position)
        return ApplicationSubscription(self._artifacts, gt=position, topics=self.topics)


def _project(
    subscription: Subscription, projection: ArtifactListProjection, failures: list[BaseException]
) -> None:
    try:
        for domain_event, tracking in subscription:
            projection.process_event(domain_event, tracking)
    except BaseException as err:
        failures.append(err)


def _stop_late_subscription(started: concurrent.futures.Future[Subscription]) -> None:
    if not started.cancelled() and started.exception() is None:
        started.result().stop()


def main() -> None:
    # Imported here: the composition root imports this module.
    from infrastructure.di.container import read_worker

    run_process(read_worker)


if __name__ == "__main__":
    main()
