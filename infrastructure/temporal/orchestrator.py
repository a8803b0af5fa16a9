"""``WorkflowOrchestrator`` on Temporal: one ``ProcessArtifactWorkflow`` run per artifact."""

from __future__ import annotations

from uuid import UUID

import structlog
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from application.ports import ProcessingRequest
from infrastructure.temporal.workflows import ProcessArtifactWorkflow

log = structlog.get_logger(__name__)


def workflow_id_for(artifact_id: UUID, run: int = 0) -> str:
    """The one workflow id an artifact's processing run ever runs under.

    Run 0 (the upload's) is ``artifact-<id>``; reprocessing run n is ``artifact-<id>-run-<n>``.
    """
    return f"artifact-{artifact_id}" if run == 0 else f"artifact-{artifact_id}-run-{run}"


class TemporalWorkflowOrchestrator:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    async def start_processing(self, request: ProcessingRequest) -> bool:
        workflow_id = workflow_id_for(request.artifact_id, request.run)
        try:
            # The id alone does not prevent a second run: Temporal's default reuse policy
            # allows one once the first has closed. REJECT_DUPLICATE refuses an id that ran
            # before (within the namespace's retention) with WorkflowAlreadyStartedError;
            # USE_EXISTING makes a start while the first run is still open return that run.
            handle = await self._client.start_workflow(
                ProcessArtifactWorkflow.run,
                request,
                id=workflow_id,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        except WorkflowAlreadyStartedError:
            log.info(
                "workflow_already_started",
                artifact_id=str(request.artifact_id),
                workflow_id=workflow_id,
            )
            return False
        log.info(
            "workflow_started",
            artifact_id=str(request.artifact_id),
            workflow_id=workflow_id,
            run_id=handle.first_execution_run_id,
        )
        return True
