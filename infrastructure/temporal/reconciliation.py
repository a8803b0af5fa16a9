"""The reconciler's activity: for one page of candidates, decide and record what each run's
end was (``ReconcileArtifactsWorkflow`` in reconciler.py walks the pages).

Candidates come from the read model (artifacts listed as ``uploaded`` or ``processing``);
the decision never does: it is made from the aggregate, loaded from the event store, and the
current run's workflow as Temporal describes it. The aggregate is loaded before the run is
described, so a run that starts or records its outcome in between is never mistaken for a
lost one; a record made meanwhile by the run itself wins (``OutcomeAlreadyRecorded``,
``StaleRun``: skipped).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactCatalog
from application.ports import WorkflowOrchestrator
from application.processing import CancelReason, FailureReason
from domain.artifact import (
    Artifact,
    ArtifactCreated,
    ArtifactStatus,
    ReprocessingRequested,
)
from domain.errors import OutcomeAlreadyRecorded, StaleRun
from infrastructure.temporal.reconciler import (
    RECONCILE_ARTIFACTS,
    BatchReconciled,
    ReconcileBatch,
)

log = structlog.get_logger(__name__)


class RunState(StrEnum):
    """What Temporal knows of a run's workflow."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    NOT_FOUND = "not_found"


_RUN_STATES = {
    WorkflowExecutionStatus.RUNNING: RunState.RUNNING,
    # A run that continued as new is still running under the same id.
    WorkflowExecutionStatus.CONTINUED_AS_NEW: RunState.RUNNING,
    WorkflowExecutionStatus.COMPLETED: RunState.COMPLETED,
    WorkflowExecutionStatus.FAILED: RunState.FAILED,
    WorkflowExecutionStatus.CANCELED: RunState.CANCELED,
    WorkflowExecutionStatus.TERMINATED: RunState.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT: RunState.TIMED_OUT,
}


@dataclass(frozen=True)
class Verdict:
    """What to do with one artifact: record a failure, a cancellation, re-drive, or nothing."""

    action: str  # "leave", "fail", "cancel", "redrive"
    reason: str = ""
    message: str = ""


LEAVE = Verdict("leave")
_CLOSED_FAILURES = {
    RunState.TERMINATED: (FailureReason.RUN_TERMINATED, "the run was terminated"),
    RunState.TIMED_OUT: (FailureReason.RUN_TIMED_OUT, "the run exceeded its time bound"),
    RunState.FAILED: (FailureReason.RUN_FAILED, "the run failed before recording an outcome"),
    RunState.COMPLETED: (
        FailureReason.RUN_FAILED,
        "the run completed without recording an outcome",
    ),
}


def verdict(
    artifact: Artifact, run: RunState, *, opened_at: datetime, now: datetime, grace: timedelta
) -> Verdict:
    """What an artifact whose current run is in state ``run`` needs.

    ``artifact`` was loaded before ``run`` was described; ``opened_at`` is when its current
    run was opened (the upload, or the reprocessing request), ``grace`` how long a run that
    never started is left to the pipeline worker before it is started from here.
    """
    if artifact.has_outcome or run is RunState.RUNNING:
        return LEAVE
    if run is RunState.CANCELED:
        return Verdict("cancel", CancelReason.RUN_CANCELLED, "the run was cancelled in Temporal")
    if run in _CLOSED_FAILURES:
        reason, message = _CLOSED_FAILURES[run]
        return Verdict("fail", reason, message)
    # No workflow under the run's id: never started, or forgotten after retention.
    if artifact.cancellation_requested:
        return Verdict("cancel", CancelReason.CANCELLED, "cancelled before its run was found")
    if artifact.status is ArtifactStatus.PROCESSING:
        return Verdict(
            "fail", FailureReason.RUN_LOST, "the run started, and Temporal no longer knows it"
        )
    if now - opened_at >= grace:
        return Verdict("redrive")
    return LEAVE


class ArtifactReconciler:
    """The reconciler's activity, built with the services it needs."""

    def __init__(
        self,
        client: Client,
        artifacts: ArtifactsApplication,
        catalog: ArtifactCatalog,
        orchestrator: WorkflowOrchestrator,
        *,
        redrive_after: timedelta,
        concurrency: int = 8,
    ) -> None:
        self._client = client
        self._artifacts = artifacts
        self._catalog = catalog
        self._orchestrator = orchestrator
        self._redrive_after = redrive_after
        self._concurrency = concurrency

    def all(self) -> list[Any]:
        return [self.reconcile_artifacts]

    @activity.defn(name=RECONCILE_ARTIFACTS)
    async def reconcile_artifacts(self, batch: ReconcileBatch) -> BatchReconciled:
        page = await asyncio.to_thread(
            self._catalog.list_artifacts,
            status=batch.status,
            mime_type=None,
            limit=batch.limit,
            cursor=batch.cursor,
            tenant=None,  # every tenant's artifacts are reconciled
        )
        # A few at a time: each is an event-store read and a describe call.
        slots = asyncio.Semaphore(self._concurrency)

        async def one(artifact_id: UUID) -> str:
            async with slots:
                return await self.reconcile(artifact_id)

        actions = await asyncio.gather(*(one(row.id) for row in page.items))
        return BatchReconciled(
            examined=len(actions),
            reconciled=sum(a in ("fail", "cancel") for a in actions),
            redriven=actions.count("redrive"),
            next_cursor=page.next_cursor,
        )

    async def reconcile(self, artifact_id: UUID) -> str:
        """Reconciles one artifact; returns the action taken (``leave`` when none)."""
        artifact, opened_at = await asyncio.to_thread(self._load, artifact_id)
        if artifact.has_outcome:
            return LEAVE.action
        run = await self.run_state(artifact.workflow_id)
        decided = verdict(
            artifact,
            run,
            opened_at=opened_at,
            now=datetime.now(UTC),
            grace=self._redrive_after,
        )
        about = {
            "artifact_id": str(artifact_id),
            "workflow_id": artifact.workflow_id,
            "run_state": run.value,
        }
        try:
            if decided.action == "fail":
                await asyncio.to_thread(
                    self._artifacts.record_processing_failure,
                    artifact_id,
                    run=artifact.run,
                    reason=decided.reason,
                    message=decided.message,
                )
            elif decided.action == "cancel":
                await asyncio.to_thread(
                    self._artifacts.record_processing_cancelled,
                    artifact_id,
                    run=artifact.run,
                    reason=decided.reason,
                    message=decided.message,
                )
            elif decided.action == "redrive":
                request = await asyncio.to_thread(
                    self._artifacts.processing_request_for, artifact_id, run=artifact.run
                )
                started = await self._orchestrator.start_processing(request)
                log.info("run_redriven", **about, started=started)
                return decided.action
        except (OutcomeAlreadyRecorded, StaleRun) as err:
            # The run (or a reprocessing request) got there first; its record stands.
            log.info("reconcile_skipped", **about, error=str(err))
            return LEAVE.action
        if decided.action != LEAVE.action:
            log.warning("artifact_reconciled", **about, reason=decided.reason)
            _count_reconciled(decided.reason)
        return decided.action

    async def run_state(self, workflow_id: str) -> RunState:
        """The state of the latest run under ``workflow_id``, or NOT_FOUND."""
        try:
            description = await self._client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return RunState.NOT_FOUND
            raise
        if description.status is None:
            return RunState.RUNNING
        return _RUN_STATES.get(description.status, RunState.RUNNING)

    def _load(self, artifact_id: UUID) -> tuple[Artifact, datetime]:
        artifact = self._artifacts.get_artifact(artifact_id)
        return artifact, run_opened_at(self._artifacts, artifact_id)


def _count_reconciled(reason: str) -> None:
    """``artifact_reconciled{reason}`` on the Temporal worker's metrics endpoint."""
    if activity.in_activity():
        counter = activity.metric_meter().create_counter(
            "artifact_reconciled", "artifacts given an outcome by the reconciler"
        )
        counter.add(1, {"reason": reason})


def run_opened_at(artifacts: ArtifactsApplication, artifact_id: UUID) -> datetime:
    """When the artifact's current run was opened: its upload, or its last reprocessing."""
    for event in artifacts.repository.event_store.get(artifact_id, desc=True):
        if isinstance(event, ArtifactCreated | ReprocessingRequested):
            timestamp: datetime = event.timestamp
            return timestamp
    raise LookupError(f"artifact {artifact_id} has no creation event")
