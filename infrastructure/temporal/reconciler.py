"""``ReconcileArtifactsWorkflow``: gives every artifact whose run ended without an outcome one.

A run can close without recording an outcome: terminated or cancelled from the Temporal UI
or CLI, timed out, failed because its write-back ran out of retries during a long event-store
outage; or it may never have existed (the start was lost) or have been forgotten after the
namespace's retention. Nothing inside such a run can record what happened, so something
outside it must: this workflow, run by a Temporal Schedule (``infrastructure/temporal/
schedule.py``) every ``RECONCILE_INTERVAL_SECONDS``.

Why a Schedule and not a loop in a worker: the schedule is durable (it lives in Temporal, it
survives every worker's restart and fires on whichever worker polls the queue), SKIP keeps
two reconciliations from overlapping without a lock of ours, and each reconciliation is a
workflow run with its activities, visible and retried in the Temporal UI like the runs it
looks after.

Deterministic code only: the decisions are made in the activity
(``infrastructure/temporal/reconciliation.py``), from the event store. This workflow walks the
candidates page by page, one bounded activity per page; a backlog longer than
``max_batches`` pages continues as new where it stopped, so no history grows without bound.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

RECONCILE_ARTIFACTS = "reconcile_artifacts"
# The statuses of an artifact whose run has no outcome yet, in the order they are walked.
OPEN_STATUSES = ("uploaded", "processing")


@dataclass(frozen=True)
class ReconcileInput:
    """Where a reconciliation starts (a continued one resumes at ``status``/``cursor``)."""

    batch_size: int = 100
    max_batches: int = 50
    status: str = OPEN_STATUSES[0]
    cursor: str | None = None


@dataclass(frozen=True)
class ReconcileBatch:
    """One page of candidates: artifacts listed with ``status``, after ``cursor``."""

    status: str
    cursor: str | None
    limit: int


@dataclass(frozen=True)
class BatchReconciled:
    examined: int
    reconciled: int
    redriven: int
    next_cursor: str | None


@dataclass(frozen=True)
class ReconcileSummary:
    """The workflow's result, as shown in the Temporal UI."""

    examined: int = 0
    reconciled: int = 0
    redriven: int = 0

    def plus(self, batch: BatchReconciled) -> ReconcileSummary:
        return ReconcileSummary(
            examined=self.examined + batch.examined,
            reconciled=self.reconciled + batch.reconciled,
            redriven=self.redriven + batch.redriven,
        )


# A page reads the read model, then the event store and Temporal for each artifact on it;
# a failed page is retried a few times, and the next scheduled run starts again anyway.
BATCH_TIMEOUT = timedelta(minutes=2)
BATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)


@workflow.defn
class ReconcileArtifactsWorkflow:
    @workflow.run
    async def run(self, start: ReconcileInput) -> ReconcileSummary:
        summary = ReconcileSummary()
        statuses = OPEN_STATUSES[OPEN_STATUSES.index(start.status) :]
        cursor = start.cursor
        batches = 0
        for status in statuses:
            while True:
                if batches == start.max_batches:
                    workflow.continue_as_new(replace(start, status=status, cursor=cursor))
                batch = await workflow.execute_activity(
                    RECONCILE_ARTIFACTS,
                    ReconcileBatch(status=status, cursor=cursor, limit=start.batch_size),
                    result_type=BatchReconciled,
                    start_to_close_timeout=BATCH_TIMEOUT,
                    retry_policy=BATCH_RETRY,
                    summary=f"reconcile {status} artifacts",
                )
                batches += 1
                summary = summary.plus(batch)
                cursor = batch.next_cursor
                if cursor is None:
                    break
        if summary.reconciled or summary.redriven:
            workflow.logger.info(
                "artifacts_reconciled",
                extra={"reconciled": summary.reconciled, "redriven": summary.redriven},
            )
        return summary
