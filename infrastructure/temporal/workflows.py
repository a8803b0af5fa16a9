"""``ProcessArtifactWorkflow``: the durable processing of one artifact.

Deterministic code only: no I/O, clocks, randomness or logging libraries here. Activities
are called by name, so this module never imports their (I/O-heavy) implementation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from application.ports import ProcessingRequest
    from infrastructure.temporal.models import (
        INSPECT_ARTIFACT,
        RECORD_PROCESSING_FAILURE,
        RECORD_PROCESSING_RESULT,
        Inspection,
        ProcessingFailure,
        ProcessingOutcome,
        ProcessingResult,
    )

# Retries are bounded: a step that keeps failing ends as a recorded failure, never a run
# that retries forever. Permanent problems are raised by activities as non-retryable
# ApplicationErrors whose type is the machine-readable failure reason.
INSPECT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
# Writing back only needs the event store; allow it a longer outage than the other steps.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=12,
)


@workflow.defn
class ProcessArtifactWorkflow:
    def __init__(self) -> None:
        self._step = "starting"

    @workflow.query
    def current_step(self) -> str:
        """Where a run is: ``inspecting``, ``recording``, ``done`` or ``failed``."""
        return self._step

    @workflow.run
    async def run(self, request: ProcessingRequest) -> ProcessingOutcome:
        try:
            self._step = "inspecting"
            inspection = await workflow.execute_activity(
                INSPECT_ARTIFACT,
                request,
                result_type=Inspection,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=INSPECT_RETRY,
            )
        except ActivityError as err:
            await self._fail(request, _failure_of(request, err))

        self._step = "recording"
        await workflow.execute_activity(
            RECORD_PROCESSING_RESULT,
            ProcessingResult(artifact_id=request.artifact_id, mime_type=inspection.mime_type),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )
        self._step = "done"
        workflow.logger.info("artifact processed", extra={"artifact_id": str(request.artifact_id)})
        return ProcessingOutcome(
            artifact_id=request.artifact_id, status="processed", mime_type=inspection.mime_type
        )

    async def _fail(self, request: ProcessingRequest, failure: ProcessingFailure) -> NoReturn:
        """Records the failure on the artifact, then fails the run with the same reason."""
        self._step = "recording"
        await workflow.execute_activity(
            RECORD_PROCESSING_FAILURE,
            failure,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )
        self._step = "failed"
        workflow.logger.warning(
            "artifact processing failed",
            extra={"artifact_id": str(request.artifact_id), "reason": failure.reason},
        )
        raise ApplicationError(failure.message, type=failure.reason, non_retryable=True)


def _failure_of(request: ProcessingRequest, err: ActivityError) -> ProcessingFailure:
    """Turns an activity's final failure into the reason recorded on the artifact."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable and cause.type:
        reason, message = cause.type, cause.message
    elif isinstance(cause, TimeoutError):
        timeout = cause.type.name if cause.type else "unknown"
        reason, message = "timeout", f"a processing step timed out ({timeout})"
    else:
        reason, message = "retries_exhausted", f"a processing step kept failing: {cause}"
    return ProcessingFailure(artifact_id=request.artifact_id, reason=reason, message=message)
