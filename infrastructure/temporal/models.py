"""The data that crosses Temporal: activity names, inputs and outputs.

Standard library only: the workflow sandbox imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

# Activity names, shared by the activity definitions and the workflow that calls them.
INSPECT_ARTIFACT = "inspect_artifact"
RECORD_PROCESSING_RESULT = "record_processing_result"
RECORD_PROCESSING_FAILURE = "record_processing_failure"


@dataclass(frozen=True)
class Inspection:
    """What inspecting the stored blob found."""

    mime_type: str
    size: int


@dataclass(frozen=True)
class ProcessingResult:
    artifact_id: UUID
    mime_type: str


@dataclass(frozen=True)
class ProcessingFailure:
    artifact_id: UUID
    reason: str
    message: str


@dataclass(frozen=True)
class ProcessingOutcome:
    """The workflow's result, as shown in the Temporal UI."""

    artifact_id: UUID
    status: str
    mime_type: str
