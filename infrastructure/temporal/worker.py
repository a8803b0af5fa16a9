"""The Temporal worker: runs ``ProcessArtifactWorkflow`` and its activities.

Run: ``python -m infrastructure.temporal.worker`` (``make run-temporal-worker``). Start as
many as you like on one task queue; Temporal shares the work between them. On SIGTERM it
stops polling and gives running activities ``SHUTDOWN_GRACE_SECONDS`` to finish.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from infrastructure.signals import run_process
from infrastructure.temporal.activities import ArtifactActivities
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
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ProcessArtifactWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=max_concurrent_activities,
        # The default is 0: without it, SIGTERM cancels activities mid-step.
        graceful_shutdown_timeout=shutdown_grace,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )


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
    ) -> None:
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
            )
            async with worker:
                log.info(
                    "temporal_worker_started",
                    task_queue=self._task_queue,
                    temporal_address=self._client.service_client.config.target_host,
                )
                await stop.wait()
                log.info("temporal_worker_stopping")
        log.info("temporal_worker_stopped")


def main() -> None:
    # Imported here: the composition root imports this module.
    from infrastructure.di.container import temporal_worker

    run_process(temporal_worker)


if __name__ == "__main__":
    main()
