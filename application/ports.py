"""What the application needs from the outside world, in its own words.

This module imports only the standard library: Temporal workflow code imports
``ProcessingRequest`` from here, and workflow code must stay free of I/O libraries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol
from uuid import UUID


@dataclass(frozen=True)
class ProcessingRequest:
    """Everything processing needs to know about one artifact, fixed at upload time.

    It travels through Temporal as the workflow's input, so it holds references and
    small facts only: never file content (Temporal payloads are limited to 2 MB), and
    nothing personal, not even the filename (Temporal's histories outlive an erasure; the
    activities that need the filename read it from the aggregate).
    """

    artifact_id: UUID
    storage_location: str
    content_type: str
    size: int
    sha256: str
    # 0 for the run the upload triggers; each reprocessing request opens the next one.
    run: int = 0
    # Whose artifact it is: the run's fairness key, so one tenant's backlog cannot starve
    # another's. Histories recorded before tenants existed decode as the default one.
    tenant: str = "default"


@dataclass(frozen=True)
class ContentFacts:
    """What extracting an artifact's content found: small facts and blob references.

    ``text_locations`` are blobs of extracted text, in order (each page of a paged document
    ends with a form feed); ``details`` holds kind-specific facts such as an image's width
    and height or a text's detected encoding. The structured outputs are blobs too: the
    Markdown, the chunks (JSON) and, for paged documents, the page facts (JSON).
    ``language`` is the text's ISO 639-1 code when it could be told; ``warnings`` are
    machine-readable, such as ``no_text`` for a document without any text.

    Every field after ``details`` has a default, so results recorded before they existed
    (in workflow histories, in events) still decode.
    """

    mime_type: str
    kind: str
    page_count: int | None
    char_count: int
    text_locations: list[str] = field(default_factory=list)
    # bool before int: Temporal's converter tries a union's types in order, and its int
    # accepts a bool (False would arrive as 0); its bool accepts only a bool.
    details: dict[str, str | bool | int] = field(default_factory=dict)
    markdown_location: str | None = None
    chunks_location: str | None = None
    pages_location: str | None = None
    language: str | None = None
    warnings: list[str] = field(default_factory=list)


class WorkflowOrchestrator(Protocol):
    """Starts, and stops on request, the durable processing of artifacts."""

    async def start_processing(self, request: ProcessingRequest) -> bool:
        """Starts processing run ``request.run`` of the artifact unless it was started before.

        Safe to call any number of times for the same request: at most one workflow run
        is ever started for it. Returns False when the start was refused as a duplicate of
        a run that has already closed; True when this call started the run or joined the
        one still open (Temporal answers both the same way).
        """
        ...

    async def cancel_processing(self, artifact_id: UUID, run: int) -> None:
        """Asks processing run ``run`` of the artifact to stop; it records its cancellation.

        Safe to call any number of times; a run that has already closed, or is not known,
        is left as it is.
        """
        ...


class BlobNotFound(LookupError):  # noqa: N818 - a domain word
    """No blob is stored at the given location."""


@dataclass(frozen=True)
class StoredBlob:
    location: str
    size: int
    sha256: str


@dataclass(frozen=True)
class BlobEntry:
    """A stored blob, or an unfinished write (``temporary``), as a listing shows it."""

    location: str
    size: int
    # When it was last written, in seconds since the epoch (the store's clock).
    modified_at: float
    temporary: bool = False


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

    def check(self) -> None:
        """Raises when the store cannot take new blobs (for readiness checks)."""
        ...

    def entries(self) -> Iterator[BlobEntry]:
        """Every stored blob and every unfinished write, with when it was last written."""
        ...

    def delete(self, location: str) -> None:
        """Deletes a blob or an unfinished write (a listed location); a missing one is no
        error."""
        ...


@dataclass(frozen=True)
class SummaryCandidate:
    """A summary of an artifact's text and where it came from.

    ``source`` names the adapter (``lexrank``, ``openai``), ``model`` what produced the
    words (the chat model the endpoint reported, or ``lexrank``), and ``pipeline_version``
    the deployment, so that a summary can be told apart from one a later version writes.
    """

    text: str
    source: str
    model: str
    pipeline_version: str


class SummaryUnavailable(Exception):  # noqa: N818 - a domain word
    """No summary could be had; ``retryable`` says whether asking again may help.

    A timeout or an overloaded endpoint is worth retrying (Temporal owns the retries);
    a rejected request (bad credentials, unknown model) is not.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Summarizer(Protocol):
    """Writes a short summary of a document's text."""

    def summarize(self, text: str) -> SummaryCandidate:
        """Summarizes ``text``; an empty or blank text has an empty summary.

        Implementations bound the text they read, so any length may be passed. Raises
        ``SummaryUnavailable`` when no summary can be had.
        """
        ...


class KeyDestroyed(LookupError):  # noqa: N818 - a domain word
    """The artifact's key was destroyed (it was erased): nothing more can be sealed for it."""


class KeyStore(Protocol):
    """The per-artifact keys that seal the personal fields of its events (crypto-shredding).

    Kept outside the events, in a store whose deletions are real: destroying a key makes
    every sealed field of that artifact unreadable, in every copy of the events.
    """

    def key_for(self, artifact_id: UUID) -> bytes | None:
        """The artifact's key; None when it has none, or it was destroyed."""
        ...

    def create_key(self, artifact_id: UUID) -> bytes:
        """The artifact's key, made (and stored durably) if it has none yet; raises
        ``KeyDestroyed`` once it was destroyed."""
        ...

    def destroy_key(self, artifact_id: UUID) -> None:
        """Destroys the artifact's key for good (and leaves a mark that it was); a second
        call is a no-op."""
        ...
