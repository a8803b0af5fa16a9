"""What Temporal recorded about an activity: from a run's history, and while it runs.

A retried activity leaves one ``ActivityTaskStarted`` in the history, written when its
last attempt ends, carrying that attempt's number and the identity of the worker that ran
it (``<pid>@<host>`` unless a worker sets another).
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

# The events that end an attempt, and the outcome each means (also the name of its
# attributes: ``activity_task_<outcome>_event_attributes``).
CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "completed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "failed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "canceled",
}


@dataclass(frozen=True)
class ActivityAttempt:
    """An activity's last attempt, as its run's history has it."""

    attempt: int
    identity: str
    outcome: str
    seconds: float  # from that attempt's start to its end
    ended_at: float  # the server's clock, seconds since the epoch


async def last_attempt(client: Client, workflow_id: str, activity: str) -> ActivityAttempt:
    events = [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
    scheduled = {
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity
    }
    started = {
        e.event_id: e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    }
    for event in events:
        if event.event_type in CLOSED and (start := started.get(_started_id(event))):
            attributes = start.activity_task_started_event_attributes
            ended = event.event_time.ToDatetime().timestamp()
            return ActivityAttempt(
                attempt=attributes.attempt,
                identity=attributes.identity,
                outcome=CLOSED[event.event_type],
                seconds=ended - start.event_time.ToDatetime().timestamp(),
                ended_at=ended,
            )
    raise AssertionError(f"{workflow_id}: no {activity} activity has ended")


def _started_id(event: HistoryEvent) -> int:
    attributes = getattr(event, f"activity_task_{CLOSED[event.event_type]}_event_attributes")
    started_event_id: int = attributes.started_event_id
    return started_event_id


async def running_on(client: Client, workflow_id: str, activity: str) -> str | None:
    """The identity of the worker running ``activity`` of the run right now, if one is."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None  # the pipeline worker has not started the run yet
        raise
    for pending in description.raw_description.pending_activities:
        if (
            pending.activity_type.name == activity
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        ):
            identity: str = pending.last_worker_identity
            return identity
    return None


def pid_of(identity: str) -> int:
    """The process id in a Python worker's default identity, ``<pid>@<host>``."""
    return int(identity.split("@", 1)[0])
