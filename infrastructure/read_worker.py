"""``read_worker``: keeps the read model (the artifact list) up to date with the event store.

Each session subscribes to the ``Artifacts`` application sequence (eventsourcing's
``ApplicationSubscription``) after the position the view has recorded, and on its own thread
feeds each event with its tracking record to ``ArtifactListProjection``, whose view writes
the row change and the tracking record in one transaction. So each event changes the view
exactly once, and a restart resumes exactly where the last commit left off.

An event that cannot be decoded or projected for a reason of its own (not the view's database
being away: ``infrastructure.eventstore.delivery.is_transient``) is recorded as a dead letter
in the view's database, with its position, in one transaction, and the worker moves on. When
an operator marks it for retry, the worker projects it again, with the artifact's later
events (which found no row to change while it was missing), without moving its position.

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
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError

from application.artifacts import ArtifactsApplication
from infrastructure.eventstore.consumer import Consumer
from infrastructure.eventstore.dead_letters import DeadLetterStore, Redelivery
from infrastructure.eventstore.delivery import DecodingSubscription, Delivery, is_transient
from infrastructure.eventstore.following import Progress
from infrastructure.metrics import ConsumerMetrics
from infrastructure.read_model import APPLICATION, ArtifactListProjection, ArtifactListView
from infrastructure.signals import run_process

log = structlog.get_logger(__name__)

CONSUMER = "read_worker"
Subscription = DecodingSubscription


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
        dead_letter_poll_seconds: float = 5.0,
    ) -> None:
        """``artifacts`` is the process's one application: every session subscribes to it."""
        super().__init__(
            artifacts,
            stall_seconds=stall_seconds,
            metrics=metrics,
            dead_letter_poll_seconds=dead_letter_poll_seconds,
        )
        self._view = view
        self._projection = ArtifactListProjection(view)

    @property
    def position(self) -> int | None:
        return self._view.max_tracking_id(APPLICATION)

    @property
    def dead_letters(self) -> DeadLetterStore:
        return self._view

    def project(self, delivery: Delivery, progress: Progress) -> None:
        """Projects one delivered event, or records it as a dead letter (blocking)."""
        tracking = delivery.tracking
        progress.received = tracking.notification_id
        error = delivery.error
        if error is None:
            try:
                self._projection.process_event(delivery.event, tracking)
            except Exception as err:
                if is_transient(err):
                    raise  # the session ends and resubscribes from the recorded position
                error = err
        if error is not None:
            letter = self.dead_letter(delivery, error)
            try:
                self._view.advance(tracking, [letter])
            except IntegrityError:
                # Recorded already (a second read worker): then so is its dead letter.
                if not self._view.has_tracking_id(APPLICATION, tracking.notification_id):
                    raise
            else:
                self.dead_letters_recorded([letter])
        progress.recorded = tracking.notification_id

    async def _handle_again(self, delivery: Delivery) -> None:
        if delivery.error is not None:
            raise delivery.error
        await asyncio.to_thread(self._project_again, delivery)

    def _project_again(self, delivery: Delivery) -> None:
        # The artifact's later events changed nothing while its row was missing or behind;
        # the view's version guard makes applying them again harmless either way. The last
        # write resolves the dead letter, so a crash before it leaves the retry to be redone.
        later = self._artifacts.events.get(
            UUID(str(delivery.originator_id)), gt=delivery.originator_version
        )
        events = [delivery.event, *later]
        tracking = delivery.tracking
        for number, event in enumerate(events, start=1):
            redelivery = Redelivery(
                tracking.application_name,
                tracking.notification_id,
                resolves=number == len(events),
            )
            self._projection.process_event(event, redelivery)

    async def _session(self, end: asyncio.Event, progress: Progress) -> None:
        subscription = await self._subscribe(end, progress)
        if subscription is None:
            return
        log.info("read_worker_subscribed", position=progress.recorded)
        failures: list[BaseException] = []
        projecting = threading.Thread(
            target=_project,
            args=(subscription, self, progress, failures),
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
        return DecodingSubscription(self._artifacts, gt=position, topics=self.topics)


def _project(
    subscription: Subscription,
    worker: ReadWorker,
    progress: Progress,
    failures: list[BaseException],
) -> None:
    try:
        for delivery in subscription:
            worker.project(delivery, progress)
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
