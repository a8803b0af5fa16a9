"""The reconciler's and the retention's Temporal Schedules, created or updated when a
Temporal worker starts (the retention's deleted when ``RETENTION_DAYS`` is 0).

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
from temporalio.service import RPCError, RPCStatusCode

from infrastructure.config import DEFAULT_TASK_QUEUE
from infrastructure.temporal.reconciler import ReconcileArtifactsWorkflow, ReconcileInput
from infrastructure.temporal.retention import EraseExpiredArtifactsWorkflow, RetentionInput

log = structlog.get_logger(__name__)

RECONCILE_SCHEDULE_ID = "artifact-reconciler"
RETENTION_SCHEDULE_ID = "artifact-retention"


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
    await _create_or_update(client, schedule_id, schedule, "reconcile", interval)


def retention_schedule_id(task_queue: str) -> str:
    """``artifact-retention``, one per task queue off the default (as the reconciler's)."""
    if task_queue == DEFAULT_TASK_QUEUE:
        return RETENTION_SCHEDULE_ID
    return f"{RETENTION_SCHEDULE_ID}-{task_queue}"


def retention_schedule(
    *, task_queue: str, interval: timedelta, days: float, batch_size: int
) -> Schedule:
    schedule_id = retention_schedule_id(task_queue)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            EraseExpiredArtifactsWorkflow.run,
            RetentionInput(days=days, batch_size=batch_size),
            id=f"{schedule_id}-run",
            task_queue=task_queue,
            execution_timeout=max(interval * 20, timedelta(minutes=30)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"erases artifacts older than {days:g} days (RETENTION_DAYS)"),
    )


async def ensure_retention_schedule(
    client: Client, *, task_queue: str, interval: timedelta, days: float, batch_size: int
) -> None:
    """Creates or updates the retention's schedule; deletes it when ``days`` is 0 (keep
    for ever), so that turning retention off stops it."""
    schedule_id = retention_schedule_id(task_queue)
    if days <= 0:
        try:
            await client.get_schedule_handle(schedule_id).delete()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            log.info("retention_schedule_deleted", schedule_id=schedule_id)
        return
    schedule = retention_schedule(
        task_queue=task_queue, interval=interval, days=days, batch_size=batch_size
    )
    await _create_or_update(client, schedule_id, schedule, "retention", interval)


async def _create_or_update(
    client: Client, schedule_id: str, schedule: Schedule, name: str, interval: timedelta
) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info(f"{name}_schedule_created", schedule_id=schedule_id, every=str(interval))
        return
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        # An operator's pause (and its note) outlives a worker's restart.
        schedule.state = current.description.schedule.state
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(update)
    log.info(f"{name}_schedule_updated", schedule_id=schedule_id, every=str(interval))
