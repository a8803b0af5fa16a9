"""PDF text extraction with pypdfium2 (PDFium), resumable page batch by page batch.

PDFium is fast and permissively licensed (PyMuPDF is AGPL), but it is native code fed
untrusted input, and not thread-safe: every extraction runs in its own child process
under ``limits.run_limited``. The child reports the page count (refusing documents over
the page cap before reading any page), then the blocks of one batch of pages at a time:
per page a ``page`` block and its paragraphs (``page_blocks``). The parent checks each
batch, stores it as a blob of JSON lines, hands its blocks to the ``DocumentWriter`` and
reports progress, which is what an activity heartbeats. A retried activity passes its last
heartbeat back as ``resume_from``: the stored batches are fed to a new writer again and the
child starts at the first page not yet stored, so a retry parses no stored page twice and
writes the same outputs. Wiring in an activity::

    details = activity.info().heartbeat_details
    with blob_store.open(location) as blob, DocumentWriter(blob_store) as writer:
        extract_pdf(
            blob,
            writer,
            blob_store=blob_store,
            limits=limits,
            resume_from=PdfProgress.from_details(details[0]) if details else None,
            heartbeat=lambda progress: activity.heartbeat(progress.to_details()),
        )
        document = writer.finish()
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from application.ports import BlobNotFound, BlobStore
from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.blocks import BadBlock, Block, check_block
from infrastructure.processing.limits import ChildFailed, Json, ProcessLimits, run_limited
from infrastructure.processing.text import PAGE_END, paragraphs, store_text

if TYPE_CHECKING:
    from infrastructure.processing.document import DocumentWriter


@dataclass(frozen=True)
class PdfLimits:
    max_pages: int = 1000
    # Pages per child message, stored blob and heartbeat: small enough that a batch takes
    # well under the heartbeat timeout, large enough that a long PDF is few blobs.
    page_batch: int = 25
    process: ProcessLimits = field(default_factory=ProcessLimits)


@dataclass(frozen=True)
class PdfProgress:
    """How far an extraction got: the heartbeat details a retry resumes from.

    ``block_locations`` are the stored batches of blocks (JSON lines), in page order.
    """

    page_count: int
    next_page: int
    block_locations: tuple[str, ...] = ()

    def to_details(self) -> dict[str, Json]:
        return {
            "page_count": self.page_count,
            "next_page": self.next_page,
            "block_locations": list(self.block_locations),
        }

    @classmethod
    def from_details(cls, details: object) -> PdfProgress | None:
        """The progress in heartbeat details, or None when they hold none (start over);
        details of an earlier version of this module (no ``block_locations``) hold none."""
        if isinstance(details, PdfProgress):
            return details
        if not isinstance(details, dict):
            return None
        try:
            progress = cls(
                page_count=int(details["page_count"]),
                next_page=int(details["next_page"]),
                block_locations=tuple(str(location) for location in details["block_locations"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return progress if 0 < progress.next_page <= progress.page_count else None


def extract_pdf(
    source: BinaryIO,
    writer: DocumentWriter,
    *,
    blob_store: BlobStore,
    limits: PdfLimits | None = None,
    resume_from: PdfProgress | None = None,
    heartbeat: Callable[[PdfProgress], None] = lambda progress: None,
    scratch_dir: Path | None = None,
) -> PdfProgress:
    """Extracts every page of the PDF in ``source`` into ``writer``; returns the final
    progress (its ``page_count``, its stored batches).

    ``heartbeat`` is called after every stored batch and, with the same progress, every
    few seconds while the parser works. Raises ``UnprocessableContent`` (``encrypted``,
    ``corrupt``, ``too_many_pages``, ``timeout``, ``too_large``) for what the document
    does, ``ChildFailed`` for failures worth a retry.
    """
    limits = limits or PdfLimits()
    progress = resume_from or PdfProgress(page_count=0, next_page=0)
    if not _all_stored(blob_store, progress.block_locations):
        progress = PdfProgress(page_count=0, next_page=0)
    for location in progress.block_locations:
        for block in read_blocks(blob_store, location):
            writer.add(block)
    # The child process opens the PDF by path; a blob store hands out streams.
    with _local_copy(source, scratch_dir) as path:
        items = run_limited(
            parse_pages,
            str(path),
            progress.next_page,
            limits.page_batch,
            limits.max_pages,
            limits=limits.process,
            on_wait=lambda: heartbeat(progress),
        )
        with closing(items):
            page_count = _page_count(next(items, None))
            if progress.next_page == 0:
                progress = PdfProgress(page_count=page_count, next_page=0)
            elif progress.page_count != page_count:
                raise ChildFailed(
                    f"resuming an extraction of {progress.page_count} pages, "
                    f"but the PDF has {page_count}"
                )
            for item in items:
                blocks, pages = _batch_blocks(
                    item, progress.next_page, limits.page_batch, page_count
                )
                stored = store_blocks(blob_store, blocks)
                progress = PdfProgress(
                    page_count=page_count,
                    next_page=progress.next_page + pages,
                    block_locations=(*progress.block_locations, stored),
                )
                heartbeat(progress)
                for block in blocks:
                    writer.add(block)
    if progress.next_page != page_count:
        raise ChildFailed(f"the parser stopped after {progress.next_page} of {page_count} pages")
    return progress


def store_blocks(blob_store: BlobStore, blocks: list[Block]) -> str:
    """Stores checked blocks as one blob of JSON lines; returns its location."""
    return store_text(
        blob_store, (json.dumps(block, ensure_ascii=False) + "\n" for block in blocks)
    ).location


def read_blocks(blob_store: BlobStore, location: str) -> Iterator[Block]:
    """The blocks ``store_blocks`` stored at ``location``, checked again (a blob store is
    storage, not a promise)."""
    with blob_store.open(location) as blob:
        for line in blob:
            try:
                yield check_block(json.loads(line))
            except (ValueError, BadBlock) as err:
                raise ChildFailed(f"stored blocks at {location} are damaged: {err}") from None


def parse_pages(path: str, start_page: int, page_batch: int, max_pages: int) -> Iterator[Json]:
    """Runs in the child: yields the page count, then ``{"first_page", "blocks"}`` batches."""
    # Imported here so that only child processes ever load PDFium.
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as err:
        if err.err_code in (pdfium.raw.FPDF_ERR_PASSWORD, pdfium.raw.FPDF_ERR_SECURITY):
            raise UnprocessableContent(
                FailureReason.ENCRYPTED, "the PDF is encrypted and needs a password"
            ) from None
        raise UnprocessableContent(FailureReason.CORRUPT, f"not a readable PDF: {err}") from None
    with document:
        page_count: int = len(document)
        if page_count > max_pages:
            raise UnprocessableContent(
                FailureReason.TOO_MANY_PAGES,
                f"the PDF has {page_count} pages, more than the {max_pages} allowed",
            )
        yield page_count
        for first in range(start_page, page_count, page_batch):
            last = min(first + page_batch, page_count)
            blocks: list[Json] = []
            for index in range(first, last):
                blocks.extend(page_blocks(pdfium, document, index))
            yield {"first_page": first, "blocks": blocks}


def page_blocks(pdfium: Any, document: Any, index: int) -> list[Json]:
    """Runs in the child: the blocks of page ``index`` (from 0): its ``page`` block, then its
    text layer's paragraphs. The one place that decides how a page's text is had."""
    text = page_text(pdfium, document, index)
    source = "text" if text.strip() else "none"
    blocks: list[Json] = [
        {"type": "page", "number": index + 1, "source": source, "confidence": None}
    ]
    blocks.extend({"type": "paragraph", "text": part} for part in paragraphs(text))
    return blocks


def page_text(pdfium: Any, document: Any, index: int) -> str:
    """Runs in the child: the text layer of page ``index`` (from 0), as PDFium reads it."""
    try:
        page = document[index]
    except pdfium.PdfiumError:
        raise UnprocessableContent(
            FailureReason.CORRUPT, f"page {index + 1} of the PDF cannot be read"
        ) from None
    try:
        textpage = page.get_textpage()
        try:
            text = str(textpage.get_text_range())
        finally:
            textpage.close()
    finally:
        page.close()
    # PDFium ends lines with CRLF and marks a hyphenation point (a soft hyphen) with the
    # non-character U+FFFE; a form feed is the stored page separator.
    text = text.replace("\ufffe", "").replace("\r\n", "\n").replace("\r", "\n")
    return text.replace(PAGE_END, "\n")


def _all_stored(blob_store: BlobStore, locations: tuple[str, ...]) -> bool:
    """Whether every stored batch is still there (an attempt that finished deletes them)."""
    for location in locations:
        try:
            blob_store.open(location).close()
        except BlobNotFound:
            return False
    return True


def _page_count(item: Json) -> int:
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        raise ChildFailed(f"the parser reported no page count: {item!r}")
    return item


def _batch_blocks(
    item: Json, first_page: int, page_batch: int, page_count: int
) -> tuple[list[Block], int]:
    """The checked blocks of a batch and how many pages it holds.

    The child parses hostile input, so what it sends is checked, not trusted: every block
    is one, the first starts a page, and the pages are the next ones in order.
    """
    if not (
        isinstance(item, dict)
        and item.get("first_page") == first_page
        and isinstance(values := item.get("blocks"), list)
        and values
    ):
        raise ChildFailed(f"the parser sent an unexpected batch for page {first_page + 1}")
    try:
        blocks = [check_block(value) for value in values]
    except BadBlock as err:
        raise ChildFailed(f"the parser sent a bad block for page {first_page + 1}: {err}") from None
    numbers = [block["number"] for block in blocks if block["type"] == "page"]
    if (
        blocks[0]["type"] != "page"
        or not 0 < len(numbers) <= page_batch
        or numbers != list(range(first_page + 1, first_page + 1 + len(numbers)))
        or numbers[-1] > page_count
    ):
        raise ChildFailed(f"the parser sent pages out of order for page {first_page + 1}")
    return blocks, len(numbers)


@contextmanager
def _local_copy(source: BinaryIO, directory: Path | None) -> Iterator[Path]:
    with tempfile.NamedTemporaryFile(prefix="extract-", suffix=".pdf", dir=directory) as copy:
        shutil.copyfileobj(source, copy)
        copy.flush()
        yield Path(copy.name)
