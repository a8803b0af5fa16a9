"""``pipeline_worker``: turns each ``ArtifactCreated`` event into one workflow run.

It follows the event store from its last recorded position with eventsourcing's
``ApplicationSubscription``, asks the ``WorkflowOrchestrator`` to start processing for
each new artifact, and records its position only after that start succeeded, strictly in
event order. Starts are pipelined (up to ``PIPELINE_MAX_IN_FLIGHT`` at once) but a
position is never recorded before every earlier start has succeeded.

A crash between a start and its recording replays that event on restart; the
orchestrator's start is idempotent, so the replay starts nothing new. While Temporal is
unreachable, starts are retried with backoff and the position does not move.

Run: ``python -m infrastructure.pipeline_worker`` (``make run-workflow-worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import structlog
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import get_topic

from application.artifacts import ArtifactsApplication, processing_request
from application.ports import WorkflowOrchestrator
from domain.artifact import ArtifactCreated
from infrastructure.config import Settings
from infrastructure.di.container import add_temporal, build_container
from infrastructure.eventstore import tracking_recorder
from infrastructure.logging import configure_logging
from infrastructure.signals import stop_on_signals
from infrastructure.temporal.connection import connect_with_retry

log = structlog.get_logger(__name__)

CONSUMER = "pipeline_worker"
_END = object()


class PipelineWorker:
    def __init__(
        self,
        artifacts: ArtifactsApplication,
        tracking: TrackingRecorder,
        orchestrator: WorkflowOrchestrator,
        *,
        max_in_flight: int = 16,
        drain_seconds: float = 5.0,
        max_retry_delay: float = 30.0,
    ) -> None:
        self._artifacts = artifacts
        self._tracking = tracking
        self._orchestrator = orchestrator
        self._max_in_flight = max_in_flight
        self._drain_seconds = drain_seconds
        self._max_retry_delay = max_retry_delay

    @property
    def position(self) -> int | None:
        """The last recorded position (a notification id of the application sequence)."""
        return self._tracking.max_tracking_id(self._artifacts.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Processes events until ``stop`` is set; raises if the subscription fails."""
        position = await asyncio.to_thread(lambda: self.position)
        subscription = ApplicationSubscription(
            self._artifacts, gt=position, topics=[get_topic(ArtifactCreated)]
        )
        log.info("pipeline_worker_started", position=position)
        events: asyncio.Queue[Any] = asyncio.Queue(maxsize=self._max_in_flight)
        starts: asyncio.Queue[tuple[asyncio.Task[bool], Tracking] | None] = asyncio.Queue(
            maxsize=self._max_in_flight
        )
        reader = threading.Thread(
            target=_read, args=(subscription, events, asyncio.get_running_loop()), daemon=True
        )
        reader.start()
        starter = asyncio.create_task(self._start_in_order(events, starts))
        recorder = asyncio.create_task(self._record_in_order(starts))
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {starter, recorder, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done - {stopping}:
                task.result()  # a failed reader or recorder ends the worker with its error
            # Stopping: take no new events, give the starts in flight a moment to finish.
            subscription.stop()
            await asyncio.wait({recorder}, timeout=self._drain_seconds)
        finally:
            subscription.stop()
            for task in (starter, recorder, stopping):
                task.cancel()
            await asyncio.gather(starter, recorder, stopping, return_exceptions=True)
            await asyncio.to_thread(reader.join)
            log.info(
                "pipeline_worker_stopped", position=await asyncio.to_thread(lambda: self.position)
            )

    async def _start_in_order(
        self,
        events: asyncio.Queue[Any],
        starts: asyncio.Queue[tuple[asyncio.Task[bool], Tracking] | None],
    ) -> None:
        while (item := await events.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            event, tracking = item
            task = asyncio.create_task(self._start(event))
            await starts.put((task, tracking))
        await starts.put(None)

    async def _start(self, event: ArtifactCreated) -> bool:
        request = processing_request(event)
        delay = 0.2
        while True:
            try:
                return await self._orchestrator.start_processing(request)
            except Exception as err:  # the orchestrator's errors are all worth retrying
                log.warning(
                    "workflow_start_failed",
                    artifact_id=str(request.artifact_id),
                    error=repr(err),
                    retry_in_seconds=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)

    async def _record_in_order(
        self, starts: asyncio.Queue[tuple[asyncio.Task[bool], Tracking] | None]
    ) -> None:
        while (item := await starts.get()) is not None:
            task, tracking = item
            await task
            try:
                await asyncio.to_thread(self._tracking.insert_tracking, tracking)
            except IntegrityError:
                # Another pipeline worker already recorded this position or a later one;
                # the start above was a harmless duplicate.
                log.info("position_already_recorded", position=tracking.notification_id)


def _read(
    subscription: ApplicationSubscription[Any],
    events: asyncio.Queue[Any],
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Feeds the blocking subscription into the event loop, with back-pressure."""

    def put(item: object) -> None:
        # RuntimeError or CancelledError: the loop is shutting down.
        with contextlib.suppress(RuntimeError, asyncio.CancelledError):
            asyncio.run_coroutine_threadsafe(events.put(item), loop).result()

    try:
        for event, tracking in subscription:
            put((event, tracking))
    except BaseException as err:
        put(err)
    else:
        put(_END)


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    asyncio.run(_main(settings))


async def _main(settings: Settings) -> None:
    stop = stop_on_signals()
    container = build_container(settings)
    client = await connect_with_retry(settings, stop)
    if client is None:
        return
    add_temporal(container, client)
    worker = PipelineWorker(
        container[ArtifactsApplication],
        tracking_recorder(settings, CONSUMER),
        container[WorkflowOrchestrator],  # type: ignore[type-abstract]
        max_in_flight=settings.pipeline_max_in_flight,
    )
    await worker.run(stop)


if __name__ == "__main__":
    main()
