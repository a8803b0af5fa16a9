"""The Artifact aggregate: an uploaded file and what processing made of it.

Every state change is a domain event; the command methods below ARE those events
(eventsourcing's ``@event`` decorator), so the aggregate's history is its audit trail.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from domain.errors import (
    AlreadyErased,
    CancellationNotAllowed,
    InvalidArtifact,
    OutcomeAlreadyRecorded,
    ReprocessingNotAllowed,
    StaleRun,
)
from domain.filenames import sanitise_filename


class ArtifactStatus(StrEnum):
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Deleted for good (``ArtifactErased``): only ids, times and who asked are left.
    ERASED = "erased"


# A run's outcome: once one is recorded, the run is over and the artifact can be reprocessed.
TERMINAL_STATUSES = frozenset(
    {ArtifactStatus.PROCESSED, ArtifactStatus.FAILED, ArtifactStatus.CANCELLED}
)


_SHA256 = re.compile(r"[0-9a-f]{64}")
# A tenant's name: what API_KEYS entries name ("alpha:KEY"); lowercase, short, URL-safe.
TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# The tenant of artifacts created before tenants existed, and of bare API keys.
DEFAULT_TENANT = "default"
# What an erased artifact's personal fields read as once its key is destroyed.
ERASED_TEXT = ""

# The fields of each event that may hold personal data (a filename, words of the content):
# stored encrypted under the artifact's own key, which erasure destroys (crypto-shredding;
# ``infrastructure/eventstore/shredding.py``). Keyed by the event class's name.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "ArtifactCreated": ("filename",),
    "SummaryCandidateAdded": ("text",),
    "ArtifactProcessingFailed": ("message",),
}


def workflow_id_for(artifact_id: UUID, run: int = 0) -> str:
    """The one workflow id an artifact's processing run ever runs under.

    Run 0 (the upload's) is ``artifact-<id>``; reprocessing run n is ``artifact-<id>-run-<n>``.
    Never change it: the orchestrator refuses a second start of an id, which is what makes a
    replayed event start nothing new.
    """
    return f"artifact-{artifact_id}" if run == 0 else f"artifact-{artifact_id}-run-{run}"


class Artifact(Aggregate):
    """An uploaded file, from its arrival to the outcome of its processing.

    Processing happens in numbered runs: run 0 is triggered by the upload, each
    reprocessing request opens the next one. Every outcome event names its run, so a
    late write-back from an earlier run can never overwrite a later run's result.
    """

    # EventStoreDB numbers stream positions from 0; eventsourcing defaults to 1.
    INITIAL_VERSION = 0

    class ArtifactCreated(Aggregate.Created):
        filename: str
        content_type: str
        size: int
        sha256: str
        storage_location: str
        # Version 2 added the tenant; artifacts created before belong to the default one.
        tenant: str

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["tenant"] = DEFAULT_TENANT

    class ProcessingStarted(Aggregate.Event):
        run: int
        workflow_id: str

    class ArtifactProcessed(Aggregate.Event):
        run: int
        mime_type: str
        kind: str
        page_count: int | None
        char_count: int
        text_locations: list[str]
        details: dict[str, Any]
        # Version 2 added the structured outputs (blob locations), the text's language and
        # the warnings; version 1 events are read as having none of them.
        markdown_location: str | None
        chunks_location: str | None
        pages_location: str | None
        language: str | None
        warnings: list[str]

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["markdown_location"] = None
            state["chunks_location"] = None
            state["pages_location"] = None
            state["language"] = None
            state["warnings"] = []

    class SummaryCandidateAdded(Aggregate.Event):
        run: int
        text: str
        source: str
        model: str
        pipeline_version: str

    class ArtifactProcessingFailed(Aggregate.Event):
        run: int
        reason: str
        message: str

    class ReprocessingRequested(Aggregate.Event):
        run: int

    class CancellationRequested(Aggregate.Event):
        run: int

    class ProcessingCancelled(Aggregate.Event):
        run: int
        reason: str
        message: str

    class ErasureRequested(Aggregate.Event):
        """Erasure was asked for while a run was in flight: it completes once the run has
        stopped (``record_erased``)."""

        by: str
        reason: str

    class ArtifactErased(Aggregate.Event):
        """Deleted for good: the bytes and results are deleted and the artifact's key is
        destroyed, so the personal fields of its earlier events can never be read again.
        ``by`` is who asked (``tenant:<name>``, ``admin:<principal>``, ``retention``);
        ``reason`` is ``request`` or ``retention``."""

        by: str
        reason: str

    @event(ArtifactCreated)
    def __init__(
        self,
        *,
        id: UUID,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        storage_location: str,
        tenant: str,
    ) -> None:
        self.filename = filename
        self.content_type = content_type
        self.size = size
        self.sha256 = sha256
        self.storage_location = storage_location
        self.tenant = tenant
        self.run = 0
        self.erasure: dict[str, str] | None = None
        self._reset_outcome()

    def _reset_outcome(self) -> None:
        self.status = ArtifactStatus.UPLOADED
        self.mime_type: str | None = None
        self.kind: str | None = None
        self.page_count: int | None = None
        self.char_count: int | None = None
        self.text_locations: list[str] = []
        self.details: dict[str, Any] = {}
        self.markdown_location: str | None = None
        self.chunks_location: str | None = None
        self.pages_location: str | None = None
        self.language: str | None = None
        self.warnings: list[str] = []
        self.summary: dict[str, str] | None = None
        self.failure_reason: str | None = None
        self.failure_message: str | None = None
        self.cancellation_requested = False

    @classmethod
    def create(
        cls,
        *,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        storage_location: str,
        tenant: str = DEFAULT_TENANT,
        id: UUID | None = None,
    ) -> Artifact:
        """Checks the facts of a new upload and records them as ``ArtifactCreated``.

        ``id`` is a new random one unless given (an idempotent upload derives it from its
        key, so that a retry collides with the first creation in the event store).
        """
        if size < 0:
            raise InvalidArtifact(f"size must not be negative, got {size}")
        if not _SHA256.fullmatch(sha256):
            raise InvalidArtifact("sha256 must be 64 lowercase hex digits")
        if not storage_location:
            raise InvalidArtifact("storage location must not be empty")
        if not TENANT.fullmatch(tenant):
            raise InvalidArtifact(f"not a tenant name: {tenant!r}")
        return cls(
            id=id or uuid4(),
            filename=sanitise_filename(filename),
            content_type=content_type or "application/octet-stream",
            size=size,
            sha256=sha256,
            storage_location=storage_location,
            tenant=tenant,
        )

    @property
    def workflow_id(self) -> str:
        """The workflow id of the current processing run (``workflow_id_for``)."""
        return workflow_id_for(self.id, self.run)

    @property
    def has_outcome(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def erased(self) -> bool:
        return self.status is ArtifactStatus.ERASED

    @property
    def erasure_pending(self) -> bool:
        """Erasure was asked for while a run was in flight, and is not done yet."""
        return self.erasure is not None and not self.erased

    def request_erasure(self, *, by: str, reason: str) -> bool:
        """Asks for the artifact to be erased; returns whether it can be erased now.

        With no run in flight, yes: the caller erases it (deletes its blobs, destroys its
        key) and records ``record_erased``. With a run in flight, the run is asked to stop
        (``CancellationRequested``) and ``ErasureRequested`` is recorded: the erasure is
        completed when the run has stopped. Asking again, or once erased, adds nothing.
        """
        if self.erased:
            return True
        if self.has_outcome:
            return True
        if self.erasure is None:
            if not self.cancellation_requested:
                self._cancellation_requested(run=self.run)
            self._erasure_requested(by=by, reason=reason)
        return False

    def record_erased(self, *, by: str, reason: str) -> None:
        """Records that the artifact is erased; a repeat is a no-op. The run in flight, if
        any, must have stopped first: ``request_erasure`` said so."""
        if self.erased:
            return
        if self.erasure is not None:
            by, reason = self.erasure["by"], self.erasure["reason"]
        self._erased(by=by, reason=reason)

    def record_started(self, *, run: int, workflow_id: str) -> None:
        """Records that run ``run`` is under way; repeats and late retries are no-ops."""
        self._guard_current_run(run)
        if self.status is not ArtifactStatus.UPLOADED:
            return
        self._started(run=run, workflow_id=workflow_id)

    def record_processed(
        self,
        *,
        run: int,
        mime_type: str,
        kind: str,
        page_count: int | None,
        char_count: int,
        text_locations: list[str],
        details: dict[str, Any],
        markdown_location: str | None = None,
        chunks_location: str | None = None,
        pages_location: str | None = None,
        language: str | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        """Records success; repeating the same outcome is a no-op (retried write-backs)."""
        self._guard_current_run(run)
        if self.status is ArtifactStatus.PROCESSED and (
            self.mime_type,
            self.page_count,
            self.char_count,
            self.text_locations,
        ) == (mime_type, page_count, char_count, list(text_locations)):
            return
        self._guard_outcome_not_recorded()
        self._processed(
            run=run,
            mime_type=mime_type,
            kind=kind,
            page_count=page_count,
            char_count=char_count,
            text_locations=list(text_locations),
            details=dict(details),
            markdown_location=markdown_location,
            chunks_location=chunks_location,
            pages_location=pages_location,
            language=language,
            warnings=list(warnings or []),
        )

    def add_summary_candidate(
        self, *, run: int, text: str, source: str, model: str, pipeline_version: str
    ) -> None:
        """Adds the run's summary candidate; one per run, a repeat is a no-op."""
        self._guard_current_run(run)
        if self.summary is not None:
            return
        self._summary_added(
            run=run, text=text, source=source, model=model, pipeline_version=pipeline_version
        )

    def record_failed(self, *, run: int, reason: str, message: str) -> None:
        """Records failure; repeating the same outcome is a no-op (retried write-backs)."""
        self._guard_current_run(run)
        if self.status is ArtifactStatus.FAILED and self.failure_reason == reason:
            return
        self._guard_outcome_not_recorded()
        self._failed(run=run, reason=reason, message=message)

    def request_cancellation(self) -> int:
        """Asks for the current run to be stopped; returns its number.

        Only while the run is in flight (``uploaded`` or ``processing``); asking again
        while the request stands is a no-op. The run records ``ProcessingCancelled`` once
        it has stopped; a run that finishes first keeps its outcome.
        """
        self._guard_not_erased()
        if self.has_outcome:
            raise CancellationNotAllowed(
                f"artifact {self.id} is {self.status.value}; only a run in flight can be cancelled"
            )
        if not self.cancellation_requested:
            self._cancellation_requested(run=self.run)
        return self.run

    def record_cancelled(self, *, run: int, reason: str, message: str) -> None:
        """Records that the run stopped without a result; a repeat is a no-op."""
        self._guard_current_run(run)
        if self.status is ArtifactStatus.CANCELLED:
            return
        self._guard_outcome_not_recorded()
        self._cancelled(run=run, reason=reason, message=message)

    def request_reprocessing(self) -> int:
        """Opens the next processing run and returns its number.

        Only once the current run has an outcome: reprocessing is for a failure, or for a
        result an improved pipeline would do better; it never races a run in progress.
        """
        self._guard_not_erased()
        if self.erasure is not None:
            raise ReprocessingNotAllowed(f"artifact {self.id} is being erased")
        if not self.has_outcome:
            raise ReprocessingNotAllowed(
                f"artifact {self.id} is {self.status.value}; reprocess it once it has an outcome"
            )
        self._reprocessing_requested(run=self.run + 1)
        return self.run

    def _guard_current_run(self, run: int) -> None:
        self._guard_not_erased()
        if run != self.run:
            raise StaleRun(f"artifact {self.id} is on processing run {self.run}, not {run}")

    def _guard_not_erased(self) -> None:
        if self.erased:
            raise AlreadyErased(f"artifact {self.id} was erased")

    def _guard_outcome_not_recorded(self) -> None:
        if self.has_outcome:
            raise OutcomeAlreadyRecorded(
                f"artifact {self.id} already has the outcome {self.status.value!r}"
            )

    @event(ProcessingStarted)
    def _started(self, *, run: int, workflow_id: str) -> None:
        self.status = ArtifactStatus.PROCESSING

    @event(ArtifactProcessed)
    def _processed(
        self,
        *,
        run: int,
        mime_type: str,
        kind: str,
        page_count: int | None,
        char_count: int,
        text_locations: list[str],
        details: dict[str, Any],
        markdown_location: str | None,
        chunks_location: str | None,
        pages_location: str | None,
        language: str | None,
        warnings: list[str],
    ) -> None:
        self.status = ArtifactStatus.PROCESSED
        self.mime_type = mime_type
        self.kind = kind
        self.page_count = page_count
        self.char_count = char_count
        self.text_locations = list(text_locations)
        self.details = dict(details)
        self.markdown_location = markdown_location
        self.chunks_location = chunks_location
        self.pages_location = pages_location
        self.language = language
        self.warnings = list(warnings)

    @event(SummaryCandidateAdded)
    def _summary_added(
        self, *, run: int, text: str, source: str, model: str, pipeline_version: str
    ) -> None:
        self.summary = {
            "text": text,
            "source": source,
            "model": model,
            "pipeline_version": pipeline_version,
        }

    @event(ArtifactProcessingFailed)
    def _failed(self, *, run: int, reason: str, message: str) -> None:
        self.status = ArtifactStatus.FAILED
        self.failure_reason = reason
        self.failure_message = message

    @event(CancellationRequested)
    def _cancellation_requested(self, *, run: int) -> None:
        self.cancellation_requested = True

    @event(ProcessingCancelled)
    def _cancelled(self, *, run: int, reason: str, message: str) -> None:
        self.status = ArtifactStatus.CANCELLED
        self.failure_reason = reason
        self.failure_message = message

    @event(ReprocessingRequested)
    def _reprocessing_requested(self, *, run: int) -> None:
        self.run = run
        self._reset_outcome()

    @event(ErasureRequested)
    def _erasure_requested(self, *, by: str, reason: str) -> None:
        self.erasure = {"by": by, "reason": reason}

    @event(ArtifactErased)
    def _erased(self, *, by: str, reason: str) -> None:
        self.erasure = {"by": by, "reason": reason}
        self.status = ArtifactStatus.ERASED


# The events under the names the design and the docs use; their topics are
# "domain.artifact:Artifact.ArtifactCreated" and so on.
ArtifactCreated = Artifact.ArtifactCreated
ArtifactProcessed = Artifact.ArtifactProcessed
ArtifactProcessingFailed = Artifact.ArtifactProcessingFailed
ProcessingStarted = Artifact.ProcessingStarted
SummaryCandidateAdded = Artifact.SummaryCandidateAdded
ReprocessingRequested = Artifact.ReprocessingRequested
CancellationRequested = Artifact.CancellationRequested
ProcessingCancelled = Artifact.ProcessingCancelled
ErasureRequested = Artifact.ErasureRequested
ArtifactErased = Artifact.ArtifactErased

__all__ = [
    "DEFAULT_TENANT",
    "ERASED_TEXT",
    "PERSONAL_FIELDS",
    "TENANT",
    "TERMINAL_STATUSES",
    "Artifact",
    "ArtifactCreated",
    "ArtifactErased",
    "ArtifactProcessed",
    "ArtifactProcessingFailed",
    "ArtifactStatus",
    "CancellationRequested",
    "ErasureRequested",
    "ProcessingCancelled",
    "ProcessingStarted",
    "ReprocessingRequested",
    "SummaryCandidateAdded",
    "workflow_id_for",
]
