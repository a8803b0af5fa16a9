"""The reconciler's Temporal Schedule, created or updated when a Temporal worker starts.

Idempotent: any number of workers may start at once; the first creates the schedule, the
others (and every later start) update it to the settings they run with, keeping a pause an
operator set in the UI. The schedule sets no custom search attributes, so it works on a
server where ``ArtifactId`` and the others are not registered.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from infrastructure.config import DEFAULT_TASK_QUEUE
from infrastructure.temporal.reconciler import ReconcileArtifactsWorkflow, ReconcileInput

log = structlog.get_logger(__name__)

RECONCILE_SCHEDULE_ID = "artifact-reconciler"


def reconcile_schedule_id(task_queue: str) -> str:
    """``artifact-reconciler``; on another task queue than the default, one per queue, so
    that deployments (or test runs) sharing a namespace each reconcile their own runs."""
    if task_queue == DEFAULT_TASK_QUEUE:
        return RECONCILE_SCHEDULE_ID
    return f"{RECONCILE_SCHEDULE_ID}-{task_queue}"


def reconcile_schedule(*, task_queue: str, interval: timedelta, batch_size: int) -> Schedule:
    schedule_id = reconcile_schedule_id(task_queue)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileArtifactsWorkflow.run,
            ReconcileInput(batch_size=batch_size),
            # The schedule appends each action's time to this id.
            id=f"{schedule_id}-run",
            task_queue=task_queue,
            # A reconciliation that hangs must not block the next ones (SKIP) for ever.
            execution_timeout=max(interval * 20, timedelta(minutes=10)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        # One reconciliation at a time: a slow one makes the next tick skip, not pile up.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="reconciles artifacts whose run ended without an outcome"),
    )


async def ensure_reconcile_schedule(
    client: Client, *, task_queue: str, interval: timedelta, batch_size: int
) -> None:
    """Creates the reconciler's schedule, or updates it to these settings."""
    schedule_id = reconcile_schedule_id(task_queue)
    schedule = reconcile_schedule(task_queue=task_queue, interval=interval, batch_size=batch_size)
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("reconcile_schedule_created", schedule_id=schedule_id, every=str(interval))
        return
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        # An operator's pause (and its note) outlives a worker's restart.
        schedule.state = current.description.schedule.state
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(update)
    log.info("reconcile_schedule_updated", schedule_id=schedule_id, every=str(interval))
