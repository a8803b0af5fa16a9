"""What every consumer of the application sequence shares: how it runs, and as a process.

A consumer (the pipeline worker, the read worker) handles the ``Artifacts`` events of its
``topics`` in order and records how far it got. ``Consumer.run`` follows the event store
session after session (``infrastructure.eventstore.following``) until told to stop; a
subclass says only what one session does and where its position is recorded.

An event a consumer cannot handle for a reason of its own becomes a dead letter (recorded by
the subclass with the position that passes it, ``dead_letters.py``); ``Consumer.run`` also
handles again, every ``dead_letter_poll_seconds``, the dead letters an operator marked for
retry, and keeps the ``dead_letters_open`` gauge up to date.
``ConsumerProcess`` runs one consumer with the helpers a deployed worker needs: its
Prometheus endpoint, its heartbeat file (the container health check) and its lag watch.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import structlog
from eventsourcing.persistence import ApplicationRecorder

from application.artifacts import ArtifactsApplication
from infrastructure.eventstore.dead_letters import DeadLetter, DeadLetterStore
from infrastructure.eventstore.delivery import (
    Delivery,
    decode,
    describe,
    is_transient,
    notification_at,
)
from infrastructure.eventstore.following import Progress, follow
from infrastructure.healthcheck import beat
from infrastructure.metrics import ConsumerMetrics, serve_metrics, watch_lag

log = structlog.get_logger(__name__)


class Consumer(ABC):
    name: ClassVar[str]
    """The consumer's one name: its logs, metrics, heartbeat and tracking."""
    topics: ClassVar[Sequence[str]]
    """The topics of the events it handles; it skips the others."""

    def __init__(
        self,
        artifacts: ArtifactsApplication,
        *,
        stall_seconds: float = 30.0,
        metrics: ConsumerMetrics | None = None,
        dead_letter_poll_seconds: float = 5.0,
    ) -> None:
        self._artifacts = artifacts
        self._stall_seconds = stall_seconds
        self._dead_letter_poll_seconds = dead_letter_poll_seconds
        self.metrics = metrics or ConsumerMetrics(self.name)

    @property
    @abstractmethod
    def position(self) -> int | None:
        """The last recorded position (a notification id of the application sequence)."""

    @property
    @abstractmethod
    def dead_letters(self) -> DeadLetterStore:
        """Where the consumer's dead letters are, beside its position."""

    @property
    def recorder(self) -> ApplicationRecorder:
        """The event store's recorder, where events left waiting are looked for."""
        return self._artifacts.recorder

    async def run(self, stop: asyncio.Event) -> None:
        """Handles events until ``stop`` is set.

        A session that fails, ends or stalls is replaced by a new one from the recorded
        position (``infrastructure.eventstore.following``), so a dropped database connection
        delays the work but never ends the worker.
        """
        log.info(
            f"{self.name}_started",
            position=await self._position_if_reachable(),
            **self._settings_to_log(),
        )
        retrying = asyncio.create_task(self._retry_dead_letters(stop))
        try:
            await follow(
                self._session,
                stop,
                consumer=self.name,
                recorder=self.recorder,
                topics=self.topics,
                stall_seconds=self._stall_seconds,
            )
        finally:
            retrying.cancel()
            await asyncio.gather(retrying, return_exceptions=True)
            log.info(f"{self.name}_stopped", position=await self._position_if_reachable())

    def dead_letter(self, delivery: Delivery, err: BaseException) -> DeadLetter:
        """The dead letter of ``delivery``, which failed with ``err``, to record."""
        return DeadLetter(
            position=delivery.tracking.notification_id,
            topic=delivery.topic,
            originator_id=str(delivery.originator_id),
            originator_version=delivery.originator_version,
            error=describe(err),
        )

    def dead_letters_recorded(self, letters: Sequence[DeadLetter]) -> None:
        """Says so, once ``letters`` are committed: an error log line each, the metrics."""
        for letter in letters:
            log.error(
                "dead_letter_recorded",
                consumer=self.name,
                position=letter.position,
                topic=letter.topic,
                originator_id=letter.originator_id,
                originator_version=letter.originator_version,
                error=letter.error,
            )
            self.metrics.dead_letters.inc()
            self.metrics.dead_letters_open.inc()

    @abstractmethod
    async def _handle_again(self, delivery: Delivery) -> None:
        """Handles a dead letter's event again, resolving the dead letter on success
        (``Redelivery``) without moving the position; raises what it failed with."""

    async def _retry_dead_letters(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._retry_due()
                open_ = await asyncio.to_thread(self.dead_letters.count_open)
                self.metrics.dead_letters_open.set(open_)
            except Exception as err:  # the store is away; the sessions say so too
                log.warning("dead_letter_retry_unavailable", consumer=self.name, error=repr(err))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._dead_letter_poll_seconds)

    async def _retry_due(self) -> None:
        for letter in await asyncio.to_thread(self.dead_letters.due_for_retry):
            notification = await asyncio.to_thread(
                notification_at, self._artifacts, letter.position
            )
            try:
                if notification is None:
                    raise LookupError(f"no stored event at position {letter.position}")
                await self._handle_again(decode(self._artifacts, notification))
            except Exception as err:
                if is_transient(err):
                    raise  # still marked: tried again on the next round
                await asyncio.to_thread(
                    self.dead_letters.retry_failed, letter.position, describe(err)
                )
                log.error(
                    "dead_letter_retry_failed",
                    consumer=self.name,
                    position=letter.position,
                    attempts=letter.attempts + 1,
                    error=describe(err),
                )
            else:
                log.info("dead_letter_resolved", consumer=self.name, position=letter.position)

    @abstractmethod
    async def _session(self, end: asyncio.Event, progress: Progress) -> None:
        """One subscription: from the recorded position until ``end`` is set or it ends."""

    def _settings_to_log(self) -> dict[str, object]:
        return {}

    async def _position_if_reachable(self) -> int | None:
        try:
            return await asyncio.to_thread(lambda: self.position)
        except Exception:  # the store is away; the position is safe where it is
            return None


class ConsumerProcess:
    """A consumer run as a process, with its metrics endpoint, heartbeat and lag watch."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        heartbeat: Path,
        metrics_host: str,
        metrics_port: int,
        closing: Sequence[Callable[[], None]] = (),
    ) -> None:
        """``closing`` is called on the way out: the connections the process opened."""
        self.consumer = consumer
        self._heartbeat = heartbeat
        self._metrics_address = (metrics_host, metrics_port)
        self._closing = closing

    async def run(self, stop: asyncio.Event) -> None:
        """Runs the consumer until ``stop`` is set, then closes what the process opened."""
        consumer = self.consumer
        serve_metrics(consumer.metrics.registry, *self._metrics_address)
        helpers = [
            asyncio.create_task(beat(self._heartbeat, stop)),
            asyncio.create_task(
                watch_lag(
                    consumer.metrics,
                    consumer.recorder,
                    consumer.topics,
                    lambda: consumer.position,
                    stop,
                )
            ),
        ]
        try:
            await consumer.run(stop)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            for close in self._closing:
                close()
