"""``pipeline_worker``: turns each ``ArtifactCreated`` event into one workflow run.

It follows the event store from its last recorded position with eventsourcing's
``ApplicationSubscription``, asks the ``WorkflowOrchestrator`` to start processing for
each new artifact, and records its position only after that start succeeded, strictly in
event order. Starts are pipelined (up to ``PIPELINE_MAX_IN_FLIGHT`` at once) but a
position is never recorded before every earlier start has succeeded.

A crash between a start and its recording replays that event on restart; the
orchestrator's start is idempotent, so the replay starts nothing new. While Temporal is
unreachable, starts are retried with backoff and the position does not move. When the
subscription fails, ends or stalls (a database restart, EventStoreDB's catch-up subscription
dropping), the worker resubscribes from its recorded position instead of exiting
(``infrastructure.eventstore.following``).

Several pipeline workers may run at once (during a rolling deploy, say): each starts every
artifact, the orchestrator turns the duplicates into no-ops, and only the first to record a
position advances it (the others get ``IntegrityError`` and move on). One is enough; more
only buy a faster takeover.

Run: ``python -m infrastructure.pipeline_worker`` (``make run-workflow-worker``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import structlog
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import get_topic

from application.artifacts import ArtifactsApplication, processing_request
from application.ports import WorkflowOrchestrator
from domain.artifact import (
    ArtifactCreated,
    CancellationRequested,
    ReprocessingRequested,
    workflow_id_for,
)
from infrastructure.eventstore.consumer import Consumer
from infrastructure.eventstore.following import Progress
from infrastructure.metrics import ConsumerMetrics
from infrastructure.signals import run_process

log = structlog.get_logger(__name__)

CONSUMER = "pipeline_worker"
# The upload's run and every reprocessing run each start one workflow; a cancellation
# request asks the run to stop.
TOPICS = (
    get_topic(ArtifactCreated),
    get_topic(ReprocessingRequested),
    get_topic(CancellationRequested),
)
_END = object()


class PipelineWorker(Consumer):
    name = CONSUMER
    topics = TOPICS

    def __init__(
        self,
        artifacts: ArtifactsApplication,
        tracking: TrackingRecorder,
        orchestrator: WorkflowOrchestrator,
        *,
        max_in_flight: int = 16,
        drain_seconds: float = 5.0,
        max_retry_delay: float = 30.0,
        stall_seconds: float = 30.0,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        super().__init__(artifacts, stall_seconds=stall_seconds, metrics=metrics)
        self._tracking = tracking
        self._orchestrator = orchestrator
        self._max_in_flight = max_in_flight
        self._drain_seconds = drain_seconds
        self._max_retry_delay = max_retry_delay

    @property
    def position(self) -> int | None:
        return self._tracking.max_tracking_id(self._artifacts.name)

    def _settings_to_log(self) -> dict[str, object]:
        return {"max_in_flight": self._max_in_flight}

    async def _session(self, end: asyncio.Event, progress: Progress) -> None:
        position = await asyncio.to_thread(lambda: self.position)
        # Subscribing is a network call on EventStoreDB (and PostgreSQL); one that hangs is a
        # stall too.
        subscription = await asyncio.wait_for(
            asyncio.to_thread(ApplicationSubscription, self._artifacts, position, TOPICS),
            timeout=self._stall_seconds,
        )
        progress.start_at(position)
        log.info("pipeline_worker_subscribed", position=position)
        events: asyncio.Queue[Any] = asyncio.Queue(maxsize=self._max_in_flight)
        starts: asyncio.Queue[tuple[asyncio.Task[bool], Tracking] | None] = asyncio.Queue(
            maxsize=self._max_in_flight
        )
        in_flight: set[asyncio.Task[bool]] = set()
        closing = threading.Event()
        reader = threading.Thread(
            target=_read,
            args=(subscription, events, asyncio.get_running_loop(), progress, closing),
            name=f"{CONSUMER}-subscription",
            daemon=True,
        )
        reader.start()
        starter = asyncio.create_task(self._start_in_order(events, starts, in_flight))
        recorder = asyncio.create_task(self._record_in_order(starts, progress))
        ending = asyncio.create_task(end.wait())
        try:
            await asyncio.wait({recorder, ending}, return_when=asyncio.FIRST_COMPLETED)
            # Ending, or the subscription ended or failed: take no new events, and give the
            # starts in flight a moment to finish and be recorded.
            subscription.stop()
            await asyncio.wait({recorder}, timeout=self._drain_seconds)
        finally:
            closing.set()
            subscription.stop()
            tasks = [starter, recorder, ending, *in_flight]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(reader.join, self._drain_seconds)
        for task in (recorder, starter):  # a failed recording, else the subscription's error
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error

    async def _start_in_order(
        self,
        events: asyncio.Queue[Any],
        starts: asyncio.Queue[tuple[asyncio.Task[bool], Tracking] | None],
        in_flight: set[asyncio.Task[bool]],
    ) -> None:
        while True:
            item = await events.get()
            if item is _END or isinstance(item, BaseException):
                await starts.put(None)  # lets the recorder finish what was started
                if isinstance(item, BaseException):
                    raise item
                return
            event, tracking = item
            if isinstance(event, CancellationRequested) and in_flight:
                # The run to cancel may be among the starts in flight: a cancel that
                # reached Temporal before its start would find nothing to stop.
                await asyncio.wait(set(in_flight))
            task = asyncio.create_task(self._start(event))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            await starts.put((task, tracking))

    async def _start(
        self, event: ArtifactCreated | ReprocessingRequested | CancellationRequested
    ) -> bool:
        if isinstance(event, CancellationRequested):
            return await self._cancel(event)
        if isinstance(event, ReprocessingRequested):
            artifact = await asyncio.to_thread(self._artifacts.get_artifact, event.originator_id)
            request = processing_request(artifact, run=event.run)
        else:
            request = processing_request(event)
        # Each start is a task of its own, so what is bound here stays with this artifact.
        structlog.contextvars.bind_contextvars(
            artifact_id=str(request.artifact_id),
            workflow_id=workflow_id_for(request.artifact_id, request.run),
        )
        delay = 0.2
        while True:
            try:
                started = await self._orchestrator.start_processing(request)
            except Exception as err:  # the orchestrator's errors are all worth retrying
                log.warning("workflow_start_failed", error=repr(err), retry_in_seconds=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
                continue
            # With USE_EXISTING a start that joined a still-open run also counts as started:
            # Temporal does not tell the two apart. Only closed runs come back as duplicates.
            if started:
                self.metrics.workflows_started.inc()
            else:
                self.metrics.workflows_already_started.inc()
            return started

    async def _cancel(self, event: CancellationRequested) -> bool:
        """Asks Temporal to stop the run, retried as a start is (the request is idempotent)."""
        structlog.contextvars.bind_contextvars(
            artifact_id=str(event.originator_id),
            workflow_id=workflow_id_for(event.originator_id, event.run),
        )
        delay = 0.2
        while True:
            try:
                await self._orchestrator.cancel_processing(event.originator_id, event.run)
            except Exception as err:  # as with starts: Temporal away, retried
                log.warning("workflow_cancel_failed", error=repr(err), retry_in_seconds=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
                continue
            return False

    async def _record_in_order(
        self,
        starts: asyncio.Queue[tuple[asyncio.Task[bool], Tracking] | None],
        progress: Progress,
    ) -> None:
        ended = False
        while not ended and (item := await starts.get()) is not None:
            task, tracking = item
            await task
            # Starts queued behind this one are done or nearly: wait for them and record
            # only the last position, one transaction (and fsync) for the lot. Positions
            # still advance in order: none is recorded before every earlier start succeeded.
            while not starts.empty():
                following = starts.get_nowait()
                if following is None:
                    ended = True
                    break
                await following[0]
                tracking = following[1]
            try:
                await asyncio.to_thread(self._tracking.insert_tracking, tracking)
            except IntegrityError:
                # Another pipeline worker already recorded this position or a later one;
                # the starts above were harmless duplicates.
                log.info("position_already_recorded", position=tracking.notification_id)
            progress.recorded = tracking.notification_id


def _read(
    subscription: ApplicationSubscription[Any],
    events: asyncio.Queue[Any],
    loop: asyncio.AbstractEventLoop,
    progress: Progress,
    closing: threading.Event,
) -> None:
    """Feeds the blocking subscription into the event loop, with back-pressure."""

    def put(item: object) -> bool:
        try:
            future = asyncio.run_coroutine_threadsafe(events.put(item), loop)
        except RuntimeError:  # the loop is closed
            return False
        # Back-pressure blocks here; ``closing`` frees the thread when nobody will read on.
        while not closing.is_set():
            try:
                future.result(timeout=0.1)
            except TimeoutError:
                continue
            except (RuntimeError, concurrent.futures.CancelledError):
                return False
            return True
        future.cancel()
        return False

    try:
        for event, tracking in subscription:
            progress.received = tracking.notification_id
            if not put((event, tracking)):
                return
    except BaseException as err:
        put(err)
    else:
        put(_END)


def main() -> None:
    # Imported here: the composition root imports this module.
    from infrastructure.di.container import pipeline_worker

    run_process(pipeline_worker)


if __name__ == "__main__":
    main()
