"""The data that crosses Temporal: activity names, search attributes, inputs and outputs.

Standard library, ``temporalio.common`` and ``application.ports`` (itself standard library
only) only: the workflow sandbox imports this module. Only ids, references and small
non-personal facts travel here: never file content (Temporal payloads are limited to 2 MB),
and nothing an erasure must reach (a filename, words of the content): Temporal keeps
histories for its namespace's retention, beyond any artifact's erasure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from temporalio.common import SearchAttributeKey

from application.ports import ContentFacts, SummaryCandidate

# Activity names, shared by the activity definitions and the workflow that calls them.
RECORD_PROCESSING_STARTED = "record_processing_started"
INSPECT_ARTIFACT = "inspect_artifact"
EXTRACT_CONTENT = "extract_content"
SUMMARIZE_TEXT = "summarize_text"
RECORD_PROCESSING_RESULT = "record_processing_result"
RECORD_PROCESSING_FAILURE = "record_processing_failure"
RECORD_PROCESSING_CANCELLED = "record_processing_cancelled"
# The workflow's type name: the orchestrator starts runs by it, so the processes that only
# start runs (the pipeline worker) never import the workflow module.
PROCESS_ARTIFACT_WORKFLOW = "ProcessArtifactWorkflow"

# Custom search attributes, for finding runs in the Temporal UI and CLI
# (`ArtifactId = "…"`, `MimeType = "application/pdf" AND ArtifactOutcome = "failed"`).
# The server must know them first: `make dev` registers them, a cluster needs
# `temporal operator search-attribute create` (README, "Temporal UI").
ARTIFACT_ID = SearchAttributeKey.for_keyword("ArtifactId")
MIME_TYPE = SearchAttributeKey.for_keyword("MimeType")
ARTIFACT_OUTCOME = SearchAttributeKey.for_keyword("ArtifactOutcome")
SEARCH_ATTRIBUTES = (ARTIFACT_ID, MIME_TYPE, ARTIFACT_OUTCOME)


@dataclass(frozen=True)
class ProcessingStart:
    artifact_id: UUID
    run: int
    workflow_id: str


@dataclass(frozen=True)
class Inspection:
    """What inspecting the stored blob found: its real type and how it will be extracted."""

    mime_type: str
    size: int
    kind: str


@dataclass(frozen=True)
class Extraction:
    artifact_id: UUID
    storage_location: str
    mime_type: str
    kind: str


@dataclass(frozen=True)
class SummaryRequest:
    artifact_id: UUID
    text_locations: list[str] = field(default_factory=list)
    # True: store the summary and answer a ``SummaryReference``. False only in requests a
    # run scheduled before summaries travelled by reference (they expect the words back).
    by_reference: bool = False


@dataclass(frozen=True)
class SummaryReference:
    """A summary candidate stored as a blob (its words never cross Temporal), and where it
    came from; ``record_processing_result`` records it, then deletes the blob."""

    location: str
    source: str
    model: str
    pipeline_version: str


@dataclass(frozen=True)
class ProcessingResult:
    artifact_id: UUID
    run: int
    facts: ContentFacts
    # Only runs started before summaries travelled by reference carry the words (replayed
    # in-flight runs); every new run passes ``summary_ref``.
    summary: SummaryCandidate | None = None
    summary_ref: SummaryReference | None = None


@dataclass(frozen=True)
class ProcessingFailure:
    artifact_id: UUID
    run: int
    reason: str
    message: str


@dataclass(frozen=True)
class ProcessingCancellation:
    """A run that stopped without a result, and why (``ProcessingCancelled``)."""

    artifact_id: UUID
    run: int
    reason: str
    message: str
    # What the run had written when it stopped (extracted outputs, a stored summary): no
    # event references them, so recording the cancellation deletes them.
    leftover_locations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProcessingOutcome:
    """The workflow's result, as shown in the Temporal UI."""

    artifact_id: UUID
    run: int
    status: str
    mime_type: str
    kind: str
    page_count: int | None
    char_count: int
    has_summary: bool
    # Added later, with defaults: results of earlier runs still decode.
    language: str | None = None
    warnings: list[str] = field(default_factory=list)
