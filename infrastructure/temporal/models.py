"""The data that crosses Temporal: activity names, inputs and outputs.

Standard library (and ``application.ports``, itself standard library only) only: the
workflow sandbox imports this module. Only references and small facts travel here,
never file content (Temporal payloads are limited to 2 MB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from application.ports import ContentFacts, SummaryCandidate

# Activity names, shared by the activity definitions and the workflow that calls them.
RECORD_PROCESSING_STARTED = "record_processing_started"
INSPECT_ARTIFACT = "inspect_artifact"
EXTRACT_CONTENT = "extract_content"
SUMMARIZE_TEXT = "summarize_text"
RECORD_PROCESSING_RESULT = "record_processing_result"
RECORD_PROCESSING_FAILURE = "record_processing_failure"


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


@dataclass(frozen=True)
class ProcessingResult:
    artifact_id: UUID
    run: int
    facts: ContentFacts
    summary: SummaryCandidate | None = None


@dataclass(frozen=True)
class ProcessingFailure:
    artifact_id: UUID
    run: int
    reason: str
    message: str


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
