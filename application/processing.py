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
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"
    # ODT, ODS and ODP: one parser (odfpy) tells them apart by the document's own type.
    ODF = "odf"
    HTML = "html"
    EMAIL = "email"


PDF_TYPES = frozenset({"application/pdf"})
# libmagic reports Markdown as text/plain (or text/markdown on newer magic databases).
TEXT_TYPES = frozenset(
    {"text/plain", "text/markdown", "text/x-markdown", "text/csv", "application/json"}
)
IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/tiff", "image/bmp"}
)
DOCX_TYPES = frozenset({"application/vnd.openxmlformats-officedocument.wordprocessingml.document"})
XLSX_TYPES = frozenset({"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
PPTX_TYPES = frozenset(
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation"}
)
ODF_TYPES = frozenset(
    {
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
    }
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
EMAIL_TYPES = frozenset({"message/rfc822"})
SUPPORTED_TYPES = (
    PDF_TYPES
    | TEXT_TYPES
    | IMAGE_TYPES
    | DOCX_TYPES
    | XLSX_TYPES
    | PPTX_TYPES
    | ODF_TYPES
    | HTML_TYPES
    | EMAIL_TYPES
)
_KINDS = (
    (PDF_TYPES, ContentKind.PDF),
    (TEXT_TYPES, ContentKind.TEXT),
    (IMAGE_TYPES, ContentKind.IMAGE),
    (DOCX_TYPES, ContentKind.DOCX),
    (XLSX_TYPES, ContentKind.XLSX),
    (PPTX_TYPES, ContentKind.PPTX),
    (ODF_TYPES, ContentKind.ODF),
    (HTML_TYPES, ContentKind.HTML),
    (EMAIL_TYPES, ContentKind.EMAIL),
)
# Office formats that are refused with advice rather than a bare "not processed": what
# the file is, and what to save it as. Binary Office (97-2003) is a format of its own,
# parsed by no library here; macro-enabled files and templates are not documents to read.
_OFFICE_ADVICE_AS_WRITTEN = {
    "application/msword": ("a Word 97-2003 document (.doc)", ".docx"),
    "application/vnd.ms-excel": ("an Excel 97-2003 workbook (.xls)", ".xlsx"),
    "application/vnd.ms-powerpoint": ("a PowerPoint 97-2003 presentation (.ppt)", ".pptx"),
    "application/vnd.ms-office": ("an Office 97-2003 file", ".docx, .xlsx or .pptx"),
    "application/x-ole-storage": (
        "an OLE2 compound file (an Office 97-2003 file?)",
        ".docx, .xlsx or .pptx",
    ),
    "application/vnd.ms-word.document.macroEnabled.12": (
        "a macro-enabled Word document (.docm)",
        ".docx",
    ),
    "application/vnd.ms-excel.sheet.macroEnabled.12": (
        "a macro-enabled Excel workbook (.xlsm)",
        ".xlsx",
    ),
    "application/vnd.ms-powerpoint.presentation.macroEnabled.12": (
        "a macro-enabled PowerPoint presentation (.pptm)",
        ".pptx",
    ),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template": (
        "a Word template (.dotx)",
        ".docx",
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template": (
        "an Excel template (.xltx)",
        ".xlsx",
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.template": (
        "a PowerPoint template (.potx)",
        ".pptx",
    ),
}
_OFFICE_ADVICE = {key.lower(): value for key, value in _OFFICE_ADVICE_AS_WRITTEN.items()}
# libmagic's type for a password-protected OOXML document (an OLE2 file holding an
# EncryptedPackage), and for other encrypted containers.
ENCRYPTED_TYPES = frozenset({"application/encrypted"})


def content_kind(mime_type: str, allowed: frozenset[str] = SUPPORTED_TYPES) -> ContentKind:
    """The extraction for ``mime_type``; raises ``UnprocessableContent`` (``refusal``).

    ``allowed`` narrows the supported types (a deployment's ``ALLOWED_MIME_TYPES``); a
    type outside ``SUPPORTED_TYPES`` is never processed, whatever ``allowed`` says.
    """
    essence = mime_type.split(";", 1)[0].strip().lower()
    if essence in allowed:
        for types, kind in _KINDS:
            if essence in types:
                return kind
    raise refusal(essence)


def refusal(mime_type: str) -> UnprocessableContent:
    """Why content of ``mime_type`` is not processed: ``encrypted`` for an encrypted
    document, else ``unsupported_type``, saying what to save a legacy or macro-enabled
    Office file as."""
    essence = mime_type.split(";", 1)[0].strip().lower()
    if essence in ENCRYPTED_TYPES:
        return UnprocessableContent(
            FailureReason.ENCRYPTED,
            "the document is encrypted with a password: save it without one and upload that",
        )
    advice = _OFFICE_ADVICE.get(essence)
    if advice is not None:
        what, modern = advice
        return UnprocessableContent(
            FailureReason.UNSUPPORTED_TYPE,
            f"{what} is not processed: save it as {modern} and upload that",
        )
    return UnprocessableContent(
        FailureReason.UNSUPPORTED_TYPE, f"content of type {essence or 'unknown'} is not processed"
    )
