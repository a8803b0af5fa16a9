"""``ProcessArtifactWorkflow``: the durable processing of one artifact.

Deterministic code only: no I/O, clocks, randomness or logging libraries here. Activities
are called by name, so this module never imports their (I/O-heavy) implementation.

Steps: record that the run started, inspect (verify the blob, sniff its type, check it
is allowed), extract (PDF pages, text, image facts), summarize (when there is text), and
record the result; any step's final failure is recorded as the artifact's failure. A
cancelled run waits for the step in hand to stop, records ``ProcessingCancelled`` and ends
cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    TimeoutError,
    is_cancelled_exception,
)
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from application.ports import ContentFacts, ProcessingRequest, SummaryCandidate
    from application.processing import CancelReason, ContentWarning, FailureReason
    from infrastructure.temporal.models import (
        ARTIFACT_ID,
        ARTIFACT_OUTCOME,
        EXTRACT_CONTENT,
        INSPECT_ARTIFACT,
        MIME_TYPE,
        RECORD_PROCESSING_CANCELLED,
        RECORD_PROCESSING_FAILURE,
        RECORD_PROCESSING_RESULT,
        RECORD_PROCESSING_STARTED,
        SUMMARIZE_TEXT,
        Extraction,
        Inspection,
        ProcessingCancellation,
        ProcessingFailure,
        ProcessingOutcome,
        ProcessingResult,
        ProcessingStart,
        SummaryReference,
        SummaryRequest,
    )

# Retries are bounded: a step that keeps failing ends as a recorded failure, never a run
# that retries forever. Permanent problems (hostile or corrupt content, a missing blob)
# are raised by activities as non-retryable ApplicationErrors whose type is the
# machine-readable failure reason: those end the run after one attempt.
INSPECT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
# Extraction failures worth retrying are crashes of the parser's child process or of the
# worker itself; the retry resumes from the last heartbeat.
EXTRACT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
)
SUMMARIZE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=4,
)
# Writing back only needs the event store; allow it a longer outage than the other steps.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=12,
)
RECORD_TIMEOUT = timedelta(seconds=30)
# Above the PDF parser's own wall-clock limit (PDF_TIMEOUT_SECONDS, default 120 s), which
# ends a hostile document first; the heartbeat timeout catches a worker that died.
EXTRACT_TIMEOUT = timedelta(minutes=15)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# Runs started before the workflow upserted search attributes replay without the upserts.
SEARCH_ATTRIBUTES_PATCH = "search-attributes"
# Runs cancelled before the workflow recorded cancellations replay as they ended then.
CANCELLATION_PATCH = "record-cancellation"
# Runs that summarized before summaries travelled as blob references replay with the words
# in their history (the result type they recorded); every later summary is a reference.
SUMMARY_REFERENCE_PATCH = "summary-by-reference"
# A cancelled step is waited for until it has stopped (its heartbeat brings the request,
# the PDF parser's child is killed), so nothing of the run is still working when the
# cancellation is recorded.
WAIT_STOPPED = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED

T = TypeVar("T")


@workflow.defn
class ProcessArtifactWorkflow:
    def __init__(self) -> None:
        self._step = "starting"
        # What the run has stored so far that no event references yet: a cancellation
        # deletes it (``ProcessingCancellation.leftover_locations``).
        self._written: list[str] = []

    @workflow.query
    def current_step(self) -> str:
        """Where a run is: ``starting``, ``inspecting``, ``extracting``, ``summarizing``,
        ``recording``, ``done``, ``failed`` or ``cancelled``."""
        return self._step

    @workflow.run
    async def run(self, request: ProcessingRequest) -> ProcessingOutcome:
        try:
            return await self._process(request)
        except BaseException as err:
            if not (is_cancelled_exception(err) and workflow.patched(CANCELLATION_PATCH)):
                raise
            await self._record_cancelled(request)
            raise

    async def _process(self, request: ProcessingRequest) -> ProcessingOutcome:
        await self._record(
            RECORD_PROCESSING_STARTED,
            ProcessingStart(
                artifact_id=request.artifact_id,
                run=request.run,
                workflow_id=workflow.info().workflow_id,
            ),
            summary=f"record that run {request.run} started",
            then_cancel=True,
        )
        try:
            self._step = "inspecting"
            inspection = await workflow.execute_activity(
                INSPECT_ARTIFACT,
                request,
                result_type=Inspection,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=INSPECT_RETRY,
                cancellation_type=WAIT_STOPPED,
                # No filename: what the Temporal UI shows outlives an erasure.
                summary=f"verify and sniff {request.size} bytes",
            )
            self._upsert(MIME_TYPE.value_set(inspection.mime_type))
            self._step = "extracting"
            facts = await workflow.execute_activity(
                EXTRACT_CONTENT,
                Extraction(
                    artifact_id=request.artifact_id,
                    storage_location=request.storage_location,
                    mime_type=inspection.mime_type,
                    kind=inspection.kind,
                ),
                result_type=ContentFacts,
                start_to_close_timeout=EXTRACT_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=EXTRACT_RETRY,
                cancellation_type=WAIT_STOPPED,
                summary=f"extract {inspection.kind} content ({inspection.mime_type})",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            await self._fail(request, _failure_of(request, err))

        self._written.extend(_outputs(facts))
        summary = await self._summarize(request, facts)
        self._step = "recording"
        await self._record(
            RECORD_PROCESSING_RESULT,
            ProcessingResult(
                artifact_id=request.artifact_id,
                run=request.run,
                facts=facts,
                summary=summary if isinstance(summary, SummaryCandidate) else None,
                summary_ref=summary if isinstance(summary, SummaryReference) else None,
            ),
            summary=_result_summary(facts, summary),
        )
        self._upsert(ARTIFACT_OUTCOME.value_set("processed"))
        self._step = "done"
        workflow.logger.info("workflow_processed", extra=_about(request))
        return ProcessingOutcome(
            artifact_id=request.artifact_id,
            run=request.run,
            status="processed",
            mime_type=facts.mime_type,
            kind=facts.kind,
            page_count=facts.page_count,
            char_count=facts.char_count,
            has_summary=summary is not None,
            language=facts.language,
            warnings=list(facts.warnings),
        )

    async def _summarize(
        self, request: ProcessingRequest, facts: ContentFacts
    ) -> SummaryReference | SummaryCandidate | None:
        """The stored summary candidate, or None: a summary enriches a result, it never
        fails one. (A candidate with its words only where an older run recorded one so.)

        A document without text has none to ask for (the step is not scheduled, so runs
        recorded before ``no_text`` existed replay alike: they had no text either).
        """
        if (
            not facts.text_locations
            or facts.char_count == 0
            or ContentWarning.NO_TEXT in facts.warnings
        ):
            return None
        self._step = "summarizing"
        by_reference = workflow.patched(SUMMARY_REFERENCE_PATCH)
        try:
            summary: SummaryReference | SummaryCandidate = await workflow.execute_activity(
                SUMMARIZE_TEXT,
                SummaryRequest(
                    artifact_id=request.artifact_id,
                    text_locations=facts.text_locations,
                    by_reference=by_reference,
                ),
                result_type=SummaryReference if by_reference else SummaryCandidate,
                start_to_close_timeout=timedelta(minutes=2),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=SUMMARIZE_RETRY,
                cancellation_type=WAIT_STOPPED,
                summary=f"summarize {facts.char_count} characters",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            workflow.logger.warning(
                "summary_unavailable", extra={**_about(request), "error": str(err.cause)}
            )
            return None
        if isinstance(summary, SummaryReference):
            self._written.append(summary.location)
        return summary

    def _upsert(self, update: SearchAttributeUpdate[str]) -> None:
        """Adds a search attribute to the run, for finding it in the Temporal UI.

        Upserting an attribute the server does not know fails the workflow task, again and
        again. The orchestrator sets ``ArtifactId`` at start only where the attributes are
        registered, so a run without it upserts nothing (runs started by hand, servers not
        set up yet) and is processed all the same.
        """
        if workflow.info().typed_search_attributes.get(ARTIFACT_ID) is None:
            return
        if workflow.patched(SEARCH_ATTRIBUTES_PATCH):
            workflow.upsert_search_attributes([update])

    async def _record(
        self, activity: str, arg: object, *, summary: str, then_cancel: bool = False
    ) -> None:
        """Runs a write-back step to its end, even when the run is cancelled meanwhile.

        A write-back is short and bounded, and one cut off would leave the aggregate not
        knowing whether it happened. A cancellation that arrives during one takes effect
        once it is done when ``then_cancel``; after an outcome it is moot (the run
        finished first, and its outcome stands).
        """
        step = workflow.execute_activity(
            activity,
            arg,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=summary,
        )
        await _uncancelled(step, then_cancel=then_cancel)

    async def _record_cancelled(self, request: ProcessingRequest) -> None:
        """Records that the run stopped on request; the caller then ends it cancelled."""
        self._step = "recording"
        await workflow.execute_activity(
            RECORD_PROCESSING_CANCELLED,
            ProcessingCancellation(
                artifact_id=request.artifact_id,
                run=request.run,
                reason=CancelReason.CANCELLED.value,
                message="processing was cancelled on request",
                leftover_locations=list(self._written),
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"record that run {request.run} was cancelled",
        )
        self._upsert(ARTIFACT_OUTCOME.value_set("cancelled"))
        self._step = "cancelled"
        workflow.logger.info("workflow_cancelled", extra=_about(request))

    async def _fail(self, request: ProcessingRequest, failure: ProcessingFailure) -> NoReturn:
        """Records the failure on the artifact, then fails the run with the same reason."""
        self._step = "recording"
        await self._record(
            RECORD_PROCESSING_FAILURE, failure, summary=f"record the failure: {failure.reason}"
        )
        self._upsert(ARTIFACT_OUTCOME.value_set("failed"))
        self._step = "failed"
        workflow.logger.warning(
            "workflow_failed", extra={**_about(request), "reason": failure.reason}
        )
        raise ApplicationError(failure.message, type=failure.reason, non_retryable=True)


async def _uncancelled(step: Awaitable[T], *, then_cancel: bool) -> T:
    """Awaits ``step`` to its end; a cancellation meanwhile is raised once it is done
    when ``then_cancel``, and dropped otherwise.

    Temporal delivers a workflow's cancellation once, as ``CancelledError`` at the await
    in hand: the shield keeps it from reaching the step.
    """
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not workflow.patched(CANCELLATION_PATCH):
            task.cancel()
            raise
        result = await task
        if then_cancel:
            raise
        return result


def _outputs(facts: ContentFacts) -> list[str]:
    """Every blob an extraction stored (its text, Markdown, chunks, page facts)."""
    optional = (facts.markdown_location, facts.chunks_location, facts.pages_location)
    return [*facts.text_locations, *(location for location in optional if location)]


def _result_summary(
    facts: ContentFacts, summary: SummaryReference | SummaryCandidate | None
) -> str:
    """What recording the result says in the Temporal UI (the run's one line about it)."""
    if ContentWarning.NO_TEXT in facts.warnings:
        return "record the result: no text found (no_text), so no summary"
    return f"record the result: {facts.char_count} characters" + (", a summary" if summary else "")


def _about(request: ProcessingRequest) -> dict[str, str]:
    """The ids every log line about a run carries (workflow.logger adds the rest)."""
    return {"artifact_id": str(request.artifact_id), "workflow_id": workflow.info().workflow_id}


def _failure_of(request: ProcessingRequest, err: ActivityError) -> ProcessingFailure:
    """Turns an activity's final failure into the reason recorded on the artifact."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable and cause.type:
        reason, message = cause.type, cause.message
    elif isinstance(cause, ApplicationError) and cause.type == FailureReason.PARSER_KILLED:
        # Retryable: killed from outside on every one of the step's attempts.
        reason, message = FailureReason.PARSER_KILLED.value, cause.message
    elif isinstance(cause, TimeoutError):
        timeout = cause.type.name if cause.type else "unknown"
        reason, message = "timeout", f"a processing step timed out ({timeout})"
    else:
        reason, message = "retries_exhausted", f"a processing step kept failing: {cause}"
    return ProcessingFailure(
        artifact_id=request.artifact_id, run=request.run, reason=reason, message=message
    )
