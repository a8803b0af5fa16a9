"""The Artifact aggregate: an uploaded file and what processing made of it.

Every state change is a domain event; the command methods below ARE those events
(eventsourcing's ``@event`` decorator), so the aggregate's history is its audit trail.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from eventsourcing.domain import Aggregate, event


class ArtifactError(Exception):
    """Base class of the Artifact's domain errors."""


class InvalidArtifact(ArtifactError):  # noqa: N818 - a domain word, not an "Error" suffix
    """The facts given for a new artifact are not acceptable."""


class OutcomeAlreadyRecorded(ArtifactError):  # noqa: N818
    """A different processing outcome was already recorded for this artifact."""


class ArtifactStatus(StrEnum):
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"


MAX_FILENAME_LENGTH = 255
_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def sanitise_filename(name: str) -> str:
    """The client's filename reduced to a display name that is safe to store and show.

    Directory parts, control characters and path separators are dropped, and the length
    is capped (keeping the extension). It is never used as a path: blobs get server names.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name or "unnamed"


class Artifact(Aggregate):
    """An uploaded file, from its arrival to the outcome of its processing."""

    # EventStoreDB numbers stream positions from 0; eventsourcing defaults to 1.
    INITIAL_VERSION = 0

    class ArtifactCreated(Aggregate.Created):
        filename: str
        content_type: str
        size: int
        sha256: str
        storage_location: str

    class ArtifactProcessed(Aggregate.Event):
        mime_type: str

    class ArtifactProcessingFailed(Aggregate.Event):
        reason: str
        message: str

    @event(ArtifactCreated)
    def __init__(
        self,
        *,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        storage_location: str,
    ) -> None:
        self.filename = filename
        self.content_type = content_type
        self.size = size
        self.sha256 = sha256
        self.storage_location = storage_location
        self.status = ArtifactStatus.UPLOADED
        self.mime_type: str | None = None
        self.failure_reason: str | None = None
        self.failure_message: str | None = None

    @classmethod
    def create(
        cls,
        *,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        storage_location: str,
    ) -> Artifact:
        """Checks the facts of a new upload and records them as ``ArtifactCreated``."""
        if size < 0:
            raise InvalidArtifact(f"size must not be negative, got {size}")
        if not _SHA256.fullmatch(sha256):
            raise InvalidArtifact("sha256 must be 64 lowercase hex digits")
        if not storage_location:
            raise InvalidArtifact("storage location must not be empty")
        return cls(
            filename=sanitise_filename(filename),
            content_type=content_type or "application/octet-stream",
            size=size,
            sha256=sha256,
            storage_location=storage_location,
        )

    @property
    def has_outcome(self) -> bool:
        return self.status in (ArtifactStatus.PROCESSED, ArtifactStatus.FAILED)

    def record_processed(self, *, mime_type: str) -> None:
        """Records success; repeating the same outcome is a no-op (retried write-backs)."""
        if self.status is ArtifactStatus.PROCESSED and self.mime_type == mime_type:
            return
        self._guard_outcome_not_recorded()
        self._processed(mime_type=mime_type)

    def record_failed(self, *, reason: str, message: str) -> None:
        """Records failure; repeating the same outcome is a no-op (retried write-backs)."""
        if self.status is ArtifactStatus.FAILED and self.failure_reason == reason:
            return
        self._guard_outcome_not_recorded()
        self._failed(reason=reason, message=message)

    def _guard_outcome_not_recorded(self) -> None:
        if self.has_outcome:
            raise OutcomeAlreadyRecorded(
                f"artifact {self.id} already has the outcome {self.status.value!r}"
            )

    @event(ArtifactProcessed)
    def _processed(self, *, mime_type: str) -> None:
        self.status = ArtifactStatus.PROCESSED
        self.mime_type = mime_type

    @event(ArtifactProcessingFailed)
    def _failed(self, *, reason: str, message: str) -> None:
        self.status = ArtifactStatus.FAILED
        self.failure_reason = reason
        self.failure_message = message


# The events under the names the design and the docs use; their topics are
# "domain.artifact:Artifact.ArtifactCreated" and so on.
ArtifactCreated = Artifact.ArtifactCreated
ArtifactProcessed = Artifact.ArtifactProcessed
ArtifactProcessingFailed = Artifact.ArtifactProcessingFailed

__all__ = [
    "Artifact",
    "ArtifactCreated",
    "ArtifactError",
    "ArtifactProcessed",
    "ArtifactProcessingFailed",
    "ArtifactStatus",
    "InvalidArtifact",
    "OutcomeAlreadyRecorded",
    "sanitise_filename",
]
