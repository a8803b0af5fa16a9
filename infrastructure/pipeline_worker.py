"""``pipeline_worker``: turns each ``ArtifactCreated`` event into one workflow run.

It follows the event store from its last recorded position with eventsourcing's
``ApplicationSubscription``, asks the ``WorkflowOrchestrator`` to start processing for
each new artifact, and records its position only after that start succeeded, strictly in
event order. Starts are pipelined (exactly ``PIPELINE_MAX_IN_FLIGHT`` at most at once) but
a position is never recorded before every earlier start has succeeded. A start that
finished waits for the recording without holding its slot: one slow start (a tail latency,
a retry) does not stop the ones behind it, up to ``WINDOW`` times as many finished starts
waiting for the slow one.

A crash between a start and its recording replays that event on restart; the
orchestrator's start is idempotent, so the replay starts nothing new. While Temporal is
unreachable, starts are retried with backoff and jitter and the position does not move. An
event that fails for a reason of its own (it does not decode, it cannot be turned into a
request, Temporal refuses it for good: ``infrastructure.eventstore.delivery.is_transient``)
is recorded as a dead letter with the position that passes it, and the worker moves on
(``infrastructure.eventstore.dead_letters``). When the subscription fails, ends or stalls
(a database restart, EventStoreDB's catch-up subscription dropping), the worker resubscribes
from its recorded position instead of exiting (``infrastructure.eventstore.following``).

Several pipeline workers may run at once (during a rolling deploy, say): each starts every
artifact, the orchestrator turns the duplicates into no-ops, and only the first to record a
position advances it (the others get ``IntegrityError`` and move on). One is enough; more
only buy a faster takeover.

Run: ``python -m infrastructure.pipeline_worker`` (``make run-workflow-worker``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
from typing import Any

import structlog
from eventsourcing.persistence import IntegrityError, Tracking
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
from infrastructure.eventstore.dead_letters import DeadLetter, DeadLetterStore, Redelivery
from infrastructure.eventstore.delivery import DecodingSubscription, Delivery, is_transient
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
# Finished starts waiting for an earlier one to be recorded, per start in flight.
WINDOW = 8
# What a start came to: started (True), joined or refused as a duplicate (False), or a dead
# letter.
Outcome = bool | DeadLetter


class PipelineWorker(Consumer):
    name = CONSUMER
    topics = TOPICS

    def __init__(
        self,
        artifacts: ArtifactsApplication,
        tracking: DeadLetterStore,
        orchestrator: WorkflowOrchestrator,
        *,
        max_in_flight: int = 16,
        drain_seconds: float = 5.0,
        max_retry_delay: float = 30.0,
        stall_seconds: float = 30.0,
        metrics: ConsumerMetrics | None = None,
        dead_letter_poll_seconds: float = 5.0,
    ) -> None:
        super().__init__(
            artifacts,
            stall_seconds=stall_seconds,
            metrics=metrics,
            dead_letter_poll_seconds=dead_letter_poll_seconds,
        )
        self._tracking = tracking
        self._orchestrator = orchestrator
        self._max_in_flight = max_in_flight
        self._drain_seconds = drain_seconds
        self._max_retry_delay = max_retry_delay

    @property
    def position(self) -> int | None:
        return self._tracking.max_tracking_id(self._artifacts.name)

    @property
    def dead_letters(self) -> DeadLetterStore:
        return self._tracking

    def _settings_to_log(self) -> dict[str, object]:
        return {"max_in_flight": self._max_in_flight}

    async def _session(self, end: asyncio.Event, progress: Progress) -> None:
        position = await asyncio.to_thread(lambda: self.position)
        # Subscribing is a network call on EventStoreDB (and PostgreSQL); one that hangs is a
        # stall too.
        subscription = await asyncio.wait_for(
            asyncio.to_thread(DecodingSubscription, self._artifacts, position, TOPICS),
            timeout=self._stall_seconds,
        )
        progress.start_at(position)
        log.info("pipeline_worker_subscribed", position=position)
        events: asyncio.Queue[Any] = asyncio.Queue(maxsize=self._max_in_flight)
        # The order of recording, started or finished: longer than what is in flight, so
        # finished starts queue behind a slow one without taking a slot.
        starts: asyncio.Queue[tuple[asyncio.Task[Outcome], Tracking] | None] = asyncio.Queue(
            maxsize=self._max_in_flight * WINDOW
        )
        in_flight: set[asyncio.Task[Outcome]] = set()
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
        starts: asyncio.Queue[tuple[asyncio.Task[Outcome], Tracking] | None],
        in_flight: set[asyncio.Task[Outcome]],
    ) -> None:
        while True:
            item = await events.get()
            if item is _END or isinstance(item, BaseException):
                await starts.put(None)  # lets the recorder finish what was started
                if isinstance(item, BaseException):
                    raise item
                return
            delivery: Delivery = item
            if isinstance(delivery.event, CancellationRequested) and in_flight:
                # The run to cancel may be among the starts in flight: a cancel that
                # reached Temporal before its start would find nothing to stop.
                await asyncio.wait(set(in_flight))
            while len(in_flight) >= self._max_in_flight:
                await asyncio.wait(set(in_flight), return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._start(delivery))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            await starts.put((task, delivery.tracking))

    async def _start(self, delivery: Delivery) -> Outcome:
        """Starts the run of ``delivery``, retrying transient failures with backoff and
        jitter for as long as it takes; a permanent failure comes back as a dead letter."""
        if delivery.error is not None:
            return self.dead_letter(delivery, delivery.error)
        delay = 0.2
        while True:
            try:
                return await self._start_once(delivery.event)
            except Exception as err:
                if not is_transient(err):
                    return self.dead_letter(delivery, err)
                # Jitter: workers (and the starts in flight) that failed together do not all
                # come back at the same moment.
                wait = random.uniform(delay / 2, delay)  # noqa: S311 - not for security
                log.warning("workflow_start_failed", error=repr(err), retry_in_seconds=wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self._max_retry_delay)

    async def _start_once(self, event: Any) -> bool:
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
        started = await self._orchestrator.start_processing(request)
        # With USE_EXISTING a start that joined a still-open run also counts as started:
        # Temporal does not tell the two apart. Only closed runs come back as duplicates.
        if started:
            self.metrics.workflows_started.inc()
        else:
            self.metrics.workflows_already_started.inc()
        return started

    async def _handle_again(self, delivery: Delivery) -> None:
        if delivery.error is not None:
            raise delivery.error
        await self._start_once(delivery.event)
        tracking = delivery.tracking
        redelivery = Redelivery(tracking.application_name, tracking.notification_id)
        await asyncio.to_thread(self._tracking.advance, redelivery)

    async def _cancel(self, event: CancellationRequested) -> bool:
        """Asks Temporal to stop the run; retried by ``_start`` as a start is (the request is
        idempotent: a run already closed or never started is left as it is)."""
        structlog.contextvars.bind_contextvars(
            artifact_id=str(event.originator_id),
            workflow_id=workflow_id_for(event.originator_id, event.run),
        )
        await self._orchestrator.cancel_processing(event.originator_id, event.run)
        return False

    async def _record_in_order(
        self,
        starts: asyncio.Queue[tuple[asyncio.Task[Outcome], Tracking] | None],
        progress: Progress,
    ) -> None:
        held: tuple[asyncio.Task[Outcome], Tracking] | None = None
        ended = False
        while not ended:
            item, held = held or await starts.get(), None
            if item is None:
                return
            task, tracking = item
            letters = _dead([await task])
            # The finished starts queued behind this one are recorded with it: only the last
            # position, one transaction (and fsync) for the lot. Positions still advance in
            # order: none is recorded before every earlier start succeeded.
            while not starts.empty():
                following = starts.get_nowait()
                if following is None:
                    ended = True
                    break
                if not following[0].done():
                    held = following
                    break
                letters += _dead([following[0].result()])
                tracking = following[1]
            try:
                # The dead letters passed on the way commit with the position, or neither.
                await asyncio.to_thread(self._tracking.advance, tracking, letters)
            except IntegrityError:
                # Another pipeline worker already recorded this position or a later one;
                # the starts above were harmless duplicates, its dead letters the same.
                log.info("position_already_recorded", position=tracking.notification_id)
            else:
                self.dead_letters_recorded(letters)
            progress.recorded = tracking.notification_id


def _dead(outcomes: list[Outcome]) -> list[DeadLetter]:
    return [outcome for outcome in outcomes if isinstance(outcome, DeadLetter)]


def _read(
    subscription: DecodingSubscription,
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
        for delivery in subscription:
            progress.received = delivery.tracking.notification_id
            if not put(delivery):
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
