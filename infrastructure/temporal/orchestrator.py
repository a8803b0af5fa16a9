"""``WorkflowOrchestrator`` on Temporal: one ``ProcessArtifactWorkflow`` run per artifact.

Runs are started by the workflow's type name, so a process that only starts and cancels
runs never loads the workflow module.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import structlog
from temporalio.client import Client
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from application.ports import ProcessingRequest
from domain.artifact import workflow_id_for
from infrastructure.temporal.models import ARTIFACT_ID, PROCESS_ARTIFACT_WORKFLOW

log = structlog.get_logger(__name__)


def search_attributes_for(request: ProcessingRequest) -> TypedSearchAttributes:
    """What a run is found by in the Temporal UI from its start (the workflow adds more)."""
    return TypedSearchAttributes([SearchAttributePair(ARTIFACT_ID, str(request.artifact_id))])


def memo_for(request: ProcessingRequest) -> dict[str, object]:
    """Shown with the run in the Temporal UI; not searchable. No filename: Temporal keeps
    a run's memo as long as its history, beyond the artifact's erasure."""
    return {"size": request.size, "tenant": request.tenant}


def priority_for(request: ProcessingRequest) -> Priority:
    """The tenant is the run's fairness key: where the server has fairness on
    (``matching.enableFairness``), a backlog of one tenant's runs cannot starve another's
    (its tasks are dispatched round-robin between keys); elsewhere the key is ignored.
    Activities inherit it from their run."""
    return Priority(fairness_key=request.tenant)


class TemporalWorkflowOrchestrator:
    def __init__(
        self,
        client: Client,
        task_queue: str,
        *,
        execution_timeout: timedelta = timedelta(hours=6),
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        # Every run is bounded: Temporal closes it (timed out) past this, however it is
        # stuck, so "how long can a run be in flight" has an answer the sweep can rely on.
        self._execution_timeout = execution_timeout
        self._search_attributes_known = True

    async def start_processing(self, request: ProcessingRequest) -> bool:
        workflow_id = workflow_id_for(request.artifact_id, request.run)
        try:
            # The id alone does not prevent a second run: Temporal's default reuse policy
            # allows one once the first has closed. REJECT_DUPLICATE refuses an id that ran
            # before (within the namespace's retention) with WorkflowAlreadyStartedError;
            # USE_EXISTING makes a start while the first run is still open return that run.
            handle = await self._client.start_workflow(
                PROCESS_ARTIFACT_WORKFLOW,
                request,
                id=workflow_id,
                task_queue=self._task_queue,
                execution_timeout=self._execution_timeout,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=(
                    search_attributes_for(request) if self._search_attributes_known else None
                ),
                memo=memo_for(request),
                priority=priority_for(request),
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

    async def cancel_processing(self, artifact_id: UUID, run: int) -> None:
        workflow_id = workflow_id_for(artifact_id, run)
        try:
            # Without a run id this reaches the latest run of the id: the one started for
            # this processing run (REJECT_DUPLICATE allows no other). Asking twice is the
            # same request; the server records it once.
            await self._client.get_workflow_handle(workflow_id).cancel()
        except RPCError as err:
            # Closed or never known (retention passed): nothing is left to stop, and the
            # run's outcome, or the reconciler, settles the artifact.
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            log.info("workflow_not_running", artifact_id=str(artifact_id), workflow_id=workflow_id)
            return
        log.info("workflow_cancel_requested", artifact_id=str(artifact_id), workflow_id=workflow_id)


def _unknown_search_attribute(err: RPCError) -> bool:
    return err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in err.message
