"""What every consumer of the application sequence shares: how it runs, and as a process.

A consumer (the pipeline worker, the read worker) handles the ``Artifacts`` events of its
``topics`` in order and records how far it got. ``Consumer.run`` follows the event store
session after session (``infrastructure.eventstore.following``) until told to stop; a
subclass says only what one session does and where its position is recorded.
``ConsumerProcess`` runs one consumer with the helpers a deployed worker needs: its
Prometheus endpoint, its heartbeat file (the container health check) and its lag watch.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import structlog
from eventsourcing.persistence import ApplicationRecorder

from application.artifacts import ArtifactsApplication
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
    ) -> None:
        self._artifacts = artifacts
        self._stall_seconds = stall_seconds
        self.metrics = metrics or ConsumerMetrics(self.name)

    @property
    @abstractmethod
    def position(self) -> int | None:
        """The last recorded position (a notification id of the application sequence)."""

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
            log.info(f"{self.name}_stopped", position=await self._position_if_reachable())

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
