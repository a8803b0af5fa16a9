"""The Temporal worker: runs ``ProcessArtifactWorkflow`` and its activities.

Run: ``python -m infrastructure.temporal.worker`` (``make run-temporal-worker``). Start as
many as you like on one task queue; Temporal shares the work between them. On SIGTERM it
stops polling and gives running activities ``SHUTDOWN_GRACE_SECONDS`` to finish.

It also runs the reconciler (``ReconcileArtifactsWorkflow`` and its activity), and creates
or updates the Schedule that starts it (``infrastructure/temporal/schedule.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Interceptor, Worker

from infrastructure.signals import run_process
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.reconciler import ReconcileArtifactsWorkflow
from infrastructure.temporal.reconciliation import ArtifactReconciler
from infrastructure.temporal.retention import ArtifactRetention, EraseExpiredArtifactsWorkflow
from infrastructure.temporal.schedule import ensure_reconcile_schedule, ensure_retention_schedule
from infrastructure.temporal.workflows import ProcessArtifactWorkflow

log = structlog.get_logger(__name__)

# Temporal delivers an activity's cancellation in the answer to a heartbeat, and the SDK
# sends heartbeats at most every 80 % of the heartbeat timeout (24 s) by default: a cap of
# a second or two brings a cancellation to a running step that much sooner.
HEARTBEAT_THROTTLE = timedelta(seconds=2)


def build_worker(
    client: Client,
    activities: ArtifactActivities,
    executor: ThreadPoolExecutor,
    *,
    task_queue: str,
    max_concurrent_activities: int,
    shutdown_grace: timedelta = timedelta(seconds=20),
    reconciler: ArtifactReconciler | None = None,
    retention: ArtifactRetention | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    workflows: list[type[Any]] = [ProcessArtifactWorkflow]
    all_activities = activities.all()
    if reconciler is not None:
        workflows.append(ReconcileArtifactsWorkflow)
        all_activities = [*all_activities, *reconciler.all()]
    if retention is not None:
        workflows.append(EraseExpiredArtifactsWorkflow)
        all_activities = [*all_activities, *retention.all()]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=all_activities,
        activity_executor=executor,
        max_concurrent_activities=max_concurrent_activities,
        # The default is 0: without it, SIGTERM cancels activities mid-step.
        graceful_shutdown_timeout=shutdown_grace,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        interceptors=interceptors,
    )


@dataclass(frozen=True)
class Retention:
    """The retention this worker runs (``RETENTION_DAYS``; 0: none, its schedule deleted)."""

    retention: ArtifactRetention
    days: float
    interval: timedelta
    batch_size: int


@dataclass(frozen=True)
class Reconciliation:
    """The reconciler this worker runs, and its schedule's settings."""

    reconciler: ArtifactReconciler
    interval: timedelta
    batch_size: int


class TemporalWorker:
    """The process: a worker polling the task queue until stopped, with its thread pool."""

    def __init__(
        self,
        client: Client,
        activities: ArtifactActivities,
        *,
        task_queue: str,
        activity_threads: int,
        shutdown_grace: timedelta = timedelta(seconds=20),
        reconciliation: Reconciliation | None = None,
        retention: Retention | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self._reconciliation = reconciliation
        self._retention = retention
        self._interceptors = interceptors
        self._client = client
        self._activities = activities
        self._task_queue = task_queue
        self._activity_threads = activity_threads
        self._shutdown_grace = shutdown_grace

    async def run(self, stop: asyncio.Event) -> None:
        with ThreadPoolExecutor(max_workers=self._activity_threads) as executor:
            worker = build_worker(
                self._client,
                self._activities,
                executor,
                task_queue=self._task_queue,
                max_concurrent_activities=self._activity_threads,
                shutdown_grace=self._shutdown_grace,
                reconciler=self._reconciliation.reconciler if self._reconciliation else None,
                retention=self._retention.retention if self._retention else None,
                interceptors=self._interceptors,
            )
            async with worker:
                log.info(
                    "temporal_worker_started",
                    task_queue=self._task_queue,
                    temporal_address=self._client.service_client.config.target_host,
                )
                await self._schedule_reconciliation()
                await self._schedule_retention()
                await stop.wait()
                log.info("temporal_worker_stopping")
        log.info("temporal_worker_stopped")

    async def _schedule_retention(self) -> None:
        if self._retention is None:
            return
        try:
            await ensure_retention_schedule(
                self._client,
                task_queue=self._task_queue,
                interval=self._retention.interval,
                days=self._retention.days,
                batch_size=self._retention.batch_size,
            )
        except RPCError as err:
            log.error("retention_schedule_unavailable", error=str(err))

    async def _schedule_reconciliation(self) -> None:
        if self._reconciliation is None:
            return
        try:
            await ensure_reconcile_schedule(
                self._client,
                task_queue=self._task_queue,
                interval=self._reconciliation.interval,
                batch_size=self._reconciliation.batch_size,
            )
        except RPCError as err:
            # Processing goes on without it; the next worker start tries again.
            log.error("reconcile_schedule_unavailable", error=str(err))


def main() -> None:
    # Imported here: the composition root imports this module.
    from infrastructure.di.container import temporal_worker

    run_process(temporal_worker)


if __name__ == "__main__":
    main()
