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

from application.artifacts import ArtifactsApplication
from application.ports import BlobStore, Summarizer
from infrastructure.config import Settings
from infrastructure.di.container import build_container, processing_options
from infrastructure.logging import configure_logging
from infrastructure.signals import stop_on_signals
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.connection import connect_with_retry, metrics_runtime
from infrastructure.temporal.workflows import ProcessArtifactWorkflow

log = structlog.get_logger(__name__)


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
    )


async def _main(settings: Settings) -> None:
    stop = stop_on_signals()
    container = build_container(settings)
    runtime = metrics_runtime(settings.temporal_worker_metrics_address)
    client = await connect_with_retry(settings, stop, runtime=runtime)
    if client is None:
        return
    activities = ArtifactActivities(
        container[ArtifactsApplication],
        container[BlobStore],  # type: ignore[type-abstract]
        container[Summarizer],  # type: ignore[type-abstract]
        processing_options(settings),
    )
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        worker = build_worker(
            client,
            activities,
            executor,
            task_queue=settings.temporal_task_queue,
            max_concurrent_activities=settings.activity_threads,
            shutdown_grace=timedelta(seconds=settings.shutdown_grace_seconds),
        )
        async with worker:
            log.info(
                "temporal_worker_started",
                task_queue=settings.temporal_task_queue,
                temporal_address=settings.temporal_address,
            )
            await stop.wait()
            log.info("temporal_worker_stopping")
    log.info("temporal_worker_stopped")


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
