"""What the application needs from the outside world, in its own words.

This module imports only the standard library: Temporal workflow code imports
``ProcessingRequest`` from here, and workflow code must stay free of I/O libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Protocol
from uuid import UUID


@dataclass(frozen=True)
class ProcessingRequest:
    """Everything processing needs to know about one artifact, fixed at upload time.

    It travels through Temporal as the workflow's input, so it holds references and
    small facts only, never file content (Temporal payloads are limited to 2 MB).
    """

    artifact_id: UUID
    storage_location: str
    filename: str
    content_type: str
    size: int
    sha256: str


class WorkflowOrchestrator(Protocol):
    """Starts the durable processing of artifacts."""

    async def start_processing(self, request: ProcessingRequest) -> bool:
        """Starts processing ``request.artifact_id`` unless it was ever started before.

        Returns True when this call started it, False when a run for the artifact already
        exists or existed (which callers treat as success). Safe to call any number of
        times for the same artifact: at most one run is ever started.
        """
        ...


class BlobNotFound(LookupError):  # noqa: N818 - a domain word
    """No blob is stored at the given location."""


@dataclass(frozen=True)
class StoredBlob:
    location: str
    size: int
    sha256: str


class BlobWriter(Protocol):
    """A blob being written; nothing is visible at a location until ``commit``."""

    def write(self, chunk: bytes) -> None: ...

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def commit(self) -> StoredBlob:
        """Makes the blob durable and visible, and returns where it is and what it is."""
        ...

    def abort(self) -> None:
        """Discards what was written; safe to call after commit (then it does nothing)."""
        ...


class BlobStore(Protocol):
    """Stores uploaded files under names the server chooses."""

    def writer(self) -> BlobWriter:
        """Starts a new blob."""
        ...

    def open(self, location: str) -> BinaryIO:
        """Opens a stored blob for reading; raises ``BlobNotFound``."""
        ...
