"""The extract step, one extractor per content kind: ``EXTRACTORS``.

An extractor is the parent-side function of a family of formats: it gets the job (the
stored file, the options, how to heartbeat and where an earlier attempt got to) and a
``DocumentWriter``, runs the family's parser (in the limited child where the parser is
native code or reads hostile archives) and feeds the writer the checked blocks, in order.
It returns the family's own small facts (``ContentFacts.details``). Adding a family is
one module with its extractor and one entry in ``EXTRACTORS`` (and its kind and MIME types
in ``application.processing``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeAlias

from application.ports import BlobStore, ContentFacts
from application.processing import ContentKind, ContentWarning
from infrastructure.processing.blocks import BadBlock, check_block
from infrastructure.processing.document import DocumentWriter, WrittenDocument
from infrastructure.processing.formats.extractors import (
    extract_docx_content,
    extract_email_content,
    extract_html_content,
    extract_odf_content,
    extract_pptx_content,
    extract_xlsx_content,
)
from infrastructure.processing.image import extract_image
from infrastructure.processing.limits import ChildFailed
from infrastructure.processing.options import ProcessingOptions
from infrastructure.processing.pdf import PdfProgress, extract_pdf
from infrastructure.processing.text import decode_text, markdown_blocks, text_blocks

Details: TypeAlias = dict[str, str | bool | int]
MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown"})


@dataclass(frozen=True)
class ExtractionJob:
    """One extraction, as an extractor sees it."""

    source: BinaryIO
    mime_type: str
    blob_store: BlobStore
    options: ProcessingOptions
    # What the last attempt of this step reported with ``heartbeat`` (its first detail),
    # or None: a retry resumes from it.
    resume_from: object
    # Called with progress to resume from (a JSON value), or with nothing while working:
    # a step that reports nothing for the workflow's heartbeat timeout is retried.
    heartbeat: Callable[..., None]


Extractor: TypeAlias = Callable[[ExtractionJob, DocumentWriter], Details]


def extract_pdf_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """PDF: each page's text layer, or OCR where it has none worth keeping (``pdf.py``),
    resumable batch by batch."""
    progress = extract_pdf(
        job.source,
        writer,
        blob_store=job.blob_store,
        limits=job.options.pdf,
        ocr=job.options.ocr,
        resume_from=PdfProgress.from_details(job.resume_from),
        heartbeat=lambda progress: job.heartbeat(progress.to_details()),
    )
    details: Details = {}
    if progress.ocr_timed_out:
        writer.warn(ContentWarning.OCR_TIMEOUT)
        details["ocr_timed_out_pages"] = _pages(progress.ocr_timed_out)
    # The writer has every block: the batches were only kept for a retry to resume from
    # (one that finds them gone starts over).
    delete_all(job.blob_store, progress.block_locations)
    return details


def extract_text_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """Text-like files, decoded in-process (bounded by ``text_max_bytes``, pure Python):
    paragraphs, or for Markdown its headings, lists and tables too."""
    decoded = decode_text(job.source, max_bytes=job.options.text_max_bytes)
    essence = job.mime_type.split(";", 1)[0].strip().lower()
    read = markdown_blocks if essence in MARKDOWN_TYPES else text_blocks
    feed(writer, read(decoded.text))
    if decoded.truncated:
        writer.warn(ContentWarning.TRUNCATED)
    return {"encoding": decoded.encoding, "truncated": decoded.truncated}


def extract_image_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """Images: their facts, and each frame OCRed as a page, in the limited child
    (``image.py``), resumable batch of frames by batch as a PDF is."""
    image = extract_image(
        job.source,
        limits=job.options.pdf.process,
        ocr=job.options.ocr,
        on_block=writer.add,
        max_pixels=job.options.image_max_pixels,
        max_frames=job.options.image_max_frames,
        blob_store=job.blob_store,
        resume_from=PdfProgress.from_details(job.resume_from),
        heartbeat=lambda progress: job.heartbeat(progress.to_details()),
    )
    # The batches were kept for a retry only, as a PDF's are.
    delete_all(job.blob_store, image.progress.block_locations if image.progress else ())
    details: Details = dict(image.facts.to_details())
    if image.timed_out_pages:
        writer.warn(ContentWarning.OCR_TIMEOUT)
        details["ocr_timed_out_pages"] = _pages(image.timed_out_pages)
    return details


def delete_all(blob_store: BlobStore, locations: Iterable[str]) -> None:
    """Deletes the blobs at ``locations``, side by side (each delete waits on storage)."""
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="delete") as pool:
        for deleted in [pool.submit(blob_store.delete, location) for location in locations]:
            deleted.result()


def _pages(numbers: tuple[int, ...]) -> str:
    """Page numbers as a detail: "3,7" (a detail is a string, a number or a flag)."""
    return ",".join(str(number) for number in numbers)


EXTRACTORS: dict[ContentKind, Extractor] = {
    ContentKind.PDF: extract_pdf_content,
    ContentKind.TEXT: extract_text_content,
    ContentKind.IMAGE: extract_image_content,
    ContentKind.DOCX: extract_docx_content,
    ContentKind.XLSX: extract_xlsx_content,
    ContentKind.PPTX: extract_pptx_content,
    ContentKind.ODF: extract_odf_content,
    ContentKind.HTML: extract_html_content,
    ContentKind.EMAIL: extract_email_content,
}


def feed(writer: DocumentWriter, values: Iterable[Any]) -> None:
    """Checks each value a parser yielded as a block and writes it; a value that is not a
    block is the parser's failure (``ChildFailed``, worth a retry), not the document's."""
    for value in values:
        try:
            block = check_block(value)
        except BadBlock as err:
            raise ChildFailed(f"the parser sent something that is not a block: {err}") from None
        writer.add(block)


def extract(kind: ContentKind, job: ExtractionJob) -> ContentFacts:
    """Runs the kind's extractor into a new writer and returns the facts of the result.

    Nothing is committed unless the whole document was read; what a failed attempt wrote
    is discarded (a PDF's stored batches stay for the retry to resume from).
    """
    with DocumentWriter(job.blob_store, chunk_chars=job.options.chunk_chars) as writer:
        details = EXTRACTORS[kind](job, writer)
        document = writer.finish()
    return content_facts(kind, job.mime_type, document, details)


def content_facts(
    kind: ContentKind, mime_type: str, document: WrittenDocument, details: Details
) -> ContentFacts:
    return ContentFacts(
        mime_type=mime_type,
        kind=kind.value,
        page_count=document.page_count,
        char_count=document.char_count,
        text_locations=list(document.text_locations),
        details=dict(details),
        markdown_location=document.markdown_location,
        chunks_location=document.chunks_location,
        pages_location=document.pages_location,
        language=document.language,
        warnings=list(document.warnings),
    )
