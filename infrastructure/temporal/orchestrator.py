"""``WorkflowOrchestrator`` on Temporal: one ``ProcessArtifactWorkflow`` run per artifact."""

from __future__ import annotations

import structlog
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from application.ports import ProcessingRequest
from domain.artifact import workflow_id_for
from infrastructure.temporal.models import ARTIFACT_ID
from infrastructure.temporal.workflows import ProcessArtifactWorkflow

log = structlog.get_logger(__name__)


def search_attributes_for(request: ProcessingRequest) -> TypedSearchAttributes:
    """What a run is found by in the Temporal UI from its start (the workflow adds more)."""
    return TypedSearchAttributes([SearchAttributePair(ARTIFACT_ID, str(request.artifact_id))])


def memo_for(request: ProcessingRequest) -> dict[str, object]:
    """Shown with the run in the Temporal UI; not searchable."""
    return {"filename": request.filename, "size": request.size}


class TemporalWorkflowOrchestrator:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._search_attributes_known = True

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
                search_attributes=(
                    search_attributes_for(request) if self._search_attributes_known else None
                ),
                memo=memo_for(request),
            )
        except RPCError as err:
            if not (self._search_attributes_known and _unknown_search_attribute(err)):
                raise
            # A server without the attributes registered still processes; the run is then
            # found by its workflow id only, and (without ArtifactId) upserts nothing either.
            log.warning("search_attributes_unregistered", workflow_id=workflow_id, error=str(err))
            self._search_attributes_known = False
            return await self.start_processing(request)
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


def _unknown_search_attribute(err: RPCError) -> bool:
    return err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in err.message
