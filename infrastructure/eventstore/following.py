"""Following the event store through dropped connections and silent stalls.

A consumer of the application sequence (the pipeline worker, later the read worker) runs
*sessions*: each subscribes from the consumer's recorded position and handles events until
it is told to stop. Subscriptions end for reasons that are not the consumer's: a PostgreSQL
restart kills the LISTEN connection, EventStoreDB's catch-up subscription ends on most gRPC
errors, and it can also stall silently (events are appended, none arrive).

``follow`` runs one session after another until ``stop`` is set. When a session fails or its
subscription ends, it logs ``subscription_resubscribed`` with the reason and starts the
next one after a backoff; the new session starts again from the *recorded* position, so
nothing is skipped, and an event handled but not yet recorded is handled again (consumers
are idempotent for that reason). Meanwhile a watchdog asks the store whether events the
consumer follows are waiting after the last one its subscription delivered; when they are,
the consumer is idle, and nothing has arrived for ``stall_seconds``, it logs
``subscription_stalled`` and ends the session, which resubscribes at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from eventsourcing.persistence import ApplicationRecorder

log = structlog.get_logger(__name__)

# A session that ran at least this long was healthy: the next failure retries quickly again.
HEALTHY_SESSION_SECONDS = 30.0
FIRST_RETRY_DELAY = 0.2


@dataclass
class Progress:
    """How far one session got. The subscription's reader thread writes ``received``, the
    consumer writes ``recorded``, the watchdog reads both; plain int assignments, so no lock.
    """

    received: int | None = None
    """The position of the last event the subscription delivered."""
    recorded: int | None = None
    """The position of the last event the consumer has finished with and recorded."""
    subscribed: bool = False

    def start_at(self, position: int | None) -> None:
        """Called by the session once it has subscribed from ``position``."""
        self.received = self.recorded = position
        self.subscribed = True

    @property
    def busy(self) -> bool:
        """Events were delivered that are not recorded yet (the consumer is working)."""
        return self.received != self.recorded


class StallWatch:
    """Decides whether a session's subscription has stalled; one per session, blocking calls.

    Stalled means: events the consumer follows are stored after the last one delivered, the
    consumer has finished with everything it got, and that has been so for ``stall_seconds``.
    A busy consumer is never stalled (its downstream is slow, not its subscription), and
    events it does not follow never count (the head moving on with them is not a stall).
    """

    def __init__(
        self,
        recorder: ApplicationRecorder,
        topics: Sequence[str],
        stall_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recorder = recorder
        self._topics = list(topics)
        self._stall_seconds = stall_seconds
        self._clock = clock
        self._position: int | None = None
        self._waiting_since: float | None = None
        # The head up to which nothing the consumer follows is waiting, as last checked.
        self._quiet_up_to: int | None = None

    def stalled(self, progress: Progress) -> bool:
        now = self._clock()
        position, moved = progress.received, progress.received != self._position
        self._position = position
        if not progress.subscribed or progress.busy or not self._events_waiting_after(position):
            self._waiting_since = None
            return False
        if moved or self._waiting_since is None:
            self._waiting_since = now
            return False
        return now - self._waiting_since >= self._stall_seconds

    def _events_waiting_after(self, position: int | None) -> bool:
        # max_notification_id is one cheap query on every store; only when the head is past
        # the position is it worth asking whether anything followed is among those events.
        head = self._recorder.max_notification_id()
        if head is None or (position is not None and head <= position):
            return False
        if head == self._quiet_up_to:
            return False
        waiting = self._recorder.select_notifications(
            start=position, limit=1, topics=self._topics, inclusive_of_start=False
        )
        if not waiting:
            self._quiet_up_to = head
        return bool(waiting)


Session = Callable[[asyncio.Event, Progress], Awaitable[None]]
"""One subscription's lifetime: subscribe from the recorded position (``Progress.start_at``),
handle events until the event is set, return when the subscription ended, raise if it failed.
"""


async def follow(
    session: Session,
    stop: asyncio.Event,
    *,
    consumer: str,
    recorder: ApplicationRecorder,
    topics: Sequence[str],
    stall_seconds: float,
    max_retry_delay: float = 10.0,
) -> None:
    """Runs ``session`` again and again until ``stop`` is set (see the module docstring)."""
    delay = FIRST_RETRY_DELAY
    attempt = 0
    while not stop.is_set():
        progress = Progress()
        watch = StallWatch(recorder, topics, stall_seconds)
        end = asyncio.Event()
        stalled = asyncio.Event()
        helpers = [
            asyncio.create_task(_relay(stop, end)),
            asyncio.create_task(_watch(watch, progress, end, stalled, consumer, stall_seconds)),
        ]
        started = time.monotonic()
        reason = "subscription ended"
        try:
            await session(end, progress)
        except Exception as err:  # whatever ended it, the remedy is the same: resubscribe
            reason = f"{type(err).__name__}: {err}"
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        if stop.is_set():
            return
        if stalled.is_set():
            reason, delay = "stalled", FIRST_RETRY_DELAY
        elif time.monotonic() - started >= HEALTHY_SESSION_SECONDS:
            delay = FIRST_RETRY_DELAY
        attempt += 1
        log.warning(
            "subscription_lost",
            consumer=consumer,
            reason=reason,
            position=progress.recorded,
            retry_in_seconds=delay,
        )
        if await _wait(stop, delay):
            return
        log.info("subscription_resubscribed", consumer=consumer, reason=reason, attempt=attempt)
        delay = min(delay * 2, max_retry_delay)


async def _relay(stop: asyncio.Event, end: asyncio.Event) -> None:
    await stop.wait()
    end.set()


async def _watch(
    watch: StallWatch,
    progress: Progress,
    end: asyncio.Event,
    stalled: asyncio.Event,
    consumer: str,
    stall_seconds: float,
) -> None:
    # A few looks per stall period: a stall is noticed within 1.25 * stall_seconds.
    interval = min(stall_seconds / 4, 5.0)
    while not await _wait(end, interval):
        try:
            if await asyncio.to_thread(watch.stalled, progress):
                log.warning(
                    "subscription_stalled",
                    consumer=consumer,
                    position=progress.received,
                    stall_seconds=stall_seconds,
                )
                stalled.set()
                end.set()
                return
        except Exception as err:  # the store is away: the session itself will notice
            log.warning("subscription_check_failed", consumer=consumer, error=repr(err))


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Waits up to ``seconds`` for ``event``; True when it is set."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
