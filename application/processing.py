"""What processing an artifact's content can run into, and which content it processes.

Standard library only: workflow code may import it to route an artifact to the right
extraction step, and activities turn ``UnprocessableContent`` into a non-retryable failure
whose type is the reason, in one place.
"""

from __future__ import annotations

from enum import StrEnum


class FailureReason(StrEnum):
    """Machine-readable reasons why an artifact's content cannot be processed.

    They are recorded on the artifact (``ArtifactProcessingFailed.reason``), so their
    values are part of the API and must never change.
    """

    UNSUPPORTED_TYPE = "unsupported_type"
    CORRUPT = "corrupt"
    ENCRYPTED = "encrypted"
    TOO_MANY_PAGES = "too_many_pages"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    # The parser's process was killed by something other than our limits (the host's OOM
    # killer, an operator), again on each bounded retry.
    PARSER_KILLED = "parser_killed"
    # A run that closed without recording an outcome, found by the reconciler.
    RUN_TERMINATED = "run_terminated"
    RUN_TIMED_OUT = "run_timed_out"
    RUN_FAILED = "run_failed"
    # The run's workflow no longer exists (forgotten after the namespace's retention).
    RUN_LOST = "run_lost"


class CancelReason(StrEnum):
    """Why a run was stopped without a result (``ProcessingCancelled.reason``)."""

    # Asked for through the API (or the run was cancelled in Temporal, and noticed it).
    CANCELLED = "cancelled"
    # Cancelled in Temporal and closed without recording it, found by the reconciler.
    RUN_CANCELLED = "run_cancelled"


class ContentWarning(StrEnum):
    """Machine-readable warnings about a processed artifact's content
    (``ContentFacts.warnings``): it was processed, but the result is not all it could be.

    Recorded on the artifact, so their values are part of the API and must never change.
    """

    # No text at all: an empty file, blank pages, an image with nothing legible. Such an
    # artifact is processed, with no summary, and says so rather than pass as a success.
    NO_TEXT = "no_text"
    # A text file longer than TEXT_MAX_BYTES: only its start was read.
    TRUNCATED = "truncated"
    # OCR of a page reached its deadline (OCR_PAGE_TIMEOUT_SECONDS): the page has the words
    # read by then, maybe not all of them.
    OCR_TIMEOUT = "ocr_timeout"


class UnprocessableContent(Exception):  # noqa: N818 - a domain word
    """The content cannot be processed, and trying again will not change that."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"UnprocessableContent({self.reason.value!r}, {self.message!r})"


class ContentKind(StrEnum):
    """The extraction an artifact gets, decided by its sniffed MIME type."""

    PDF = "pdf"
    TEXT = "text"
    IMAGE = "image"


PDF_TYPES = frozenset({"application/pdf"})
# libmagic reports Markdown as text/plain (or text/markdown on newer magic databases).
TEXT_TYPES = frozenset(
    {"text/plain", "text/markdown", "text/x-markdown", "text/csv", "application/json"}
)
IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/tiff", "image/bmp"}
)
SUPPORTED_TYPES = PDF_TYPES | TEXT_TYPES | IMAGE_TYPES


def content_kind(mime_type: str, allowed: frozenset[str] = SUPPORTED_TYPES) -> ContentKind:
    """The extraction for ``mime_type``; raises ``UnprocessableContent(UNSUPPORTED_TYPE)``.

    ``allowed`` narrows the supported types (a deployment's ``ALLOWED_MIME_TYPES``); a
    type outside ``SUPPORTED_TYPES`` is never processed, whatever ``allowed`` says.
    """
    essence = mime_type.split(";", 1)[0].strip().lower()
    if essence in allowed:
        if essence in PDF_TYPES:
            return ContentKind.PDF
        if essence in TEXT_TYPES:
            return ContentKind.TEXT
        if essence in IMAGE_TYPES:
            return ContentKind.IMAGE
    raise UnprocessableContent(
        FailureReason.UNSUPPORTED_TYPE, f"content of type {essence or 'unknown'} is not processed"
    )
