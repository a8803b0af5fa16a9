"""The limits and choices of content processing, as the Temporal worker's settings give them.

Configuration only: it imports no parser (PDFium runs in a child process, Pillow and libmagic
load with the activities), so building the options costs a process nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from application.processing import SUPPORTED_TYPES
from infrastructure.processing.chunks import DEFAULT_CHUNK_CHARS
from infrastructure.processing.formats.archive import ArchiveLimits
from infrastructure.processing.ocr import OcrOptions
from infrastructure.processing.pdf import PdfLimits

# Pillow's own decompression-bomb threshold (Image.MAX_IMAGE_PIXELS), named here so that the
# options do not load Pillow.
DEFAULT_MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class ProcessingOptions:
    """The limits and choices of content processing (from settings)."""

    allowed_types: frozenset[str] = SUPPORTED_TYPES
    pdf: PdfLimits = field(default_factory=PdfLimits)
    text_max_bytes: int = 10 * 1024 * 1024
    image_max_pixels: int = DEFAULT_MAX_PIXELS
    image_max_frames: int = 1000
    ocr: OcrOptions = field(default_factory=OcrOptions)
    # What a ZIP-based document (OOXML, ODF) may unpack to, checked before it is parsed.
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)
    spreadsheet_max_cells: int = 500_000
    # The most characters of one chunk (GET /artifacts/{id}/chunks).
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    # The summarizer reads at most this much of the extracted text.
    summary_input_chars: int = 200_000
    # How often a step that cannot report progress heartbeats; well inside the workflow's
    # heartbeat timeout (30 s).
    heartbeat_every_seconds: float = 5.0
