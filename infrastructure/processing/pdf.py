"""PDF text extraction with pypdfium2 (PDFium), resumable page batch by page batch.

PDFium is fast and permissively licensed (PyMuPDF is AGPL), but it is native code fed
untrusted input, and not thread-safe: every extraction runs in its own child process
under ``limits.run_limited``. The child reports the page count (refusing documents over
the page cap before reading any page), then the text of one batch of pages at a time;
the parent stores each batch as a text blob and reports progress, which is what an
activity heartbeats. A retried activity passes its last heartbeat back as ``resume_from``
and the child starts at the first page not yet stored. Wiring in an activity::

    details = activity.info().heartbeat_details
    with blob_store.open(location) as blob:
        text = extract_pdf_text(
            blob,
            blob_store=blob_store,
            limits=limits,
            resume_from=PdfProgress.from_details(details[0]) if details else None,
            heartbeat=lambda progress: activity.heartbeat(progress.to_details()),
        )
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from application.ports import BlobStore
from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.limits import (
    INPUT_PATH,
    ChildFailed,
    Json,
    ProcessLimits,
    run_limited,
)
from infrastructure.processing.text import PAGE_END, store_text


@dataclass(frozen=True)
class PdfLimits:
    max_pages: int = 1000
    # Pages per child message, stored blob and heartbeat: small enough that a batch takes
    # well under the heartbeat timeout, large enough that a long PDF is few blobs.
    page_batch: int = 25
    process: ProcessLimits = field(default_factory=ProcessLimits)


@dataclass(frozen=True)
class PdfProgress:
    """How far an extraction got: the heartbeat details a retry resumes from."""

    page_count: int
    next_page: int
    text_locations: tuple[str, ...] = ()
    chars: int = 0

    def to_details(self) -> dict[str, Json]:
        return {
            "page_count": self.page_count,
            "next_page": self.next_page,
            "text_locations": list(self.text_locations),
            "chars": self.chars,
        }

    @classmethod
    def from_details(cls, details: object) -> PdfProgress | None:
        """The progress in heartbeat details, or None when they hold none (start over)."""
        if isinstance(details, PdfProgress):
            return details
        if not isinstance(details, dict):
            return None
        try:
            progress = cls(
                page_count=int(details["page_count"]),
                next_page=int(details["next_page"]),
                text_locations=tuple(str(location) for location in details["text_locations"]),
                chars=int(details["chars"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return progress if 0 < progress.next_page <= progress.page_count else None


@dataclass(frozen=True)
class PdfText:
    """A PDF's text, stored: read the blobs in order (see ``infrastructure.processing.text``)."""

    page_count: int
    text_locations: tuple[str, ...]
    chars: int


def extract_pdf_text(
    source: BinaryIO,
    *,
    blob_store: BlobStore,
    limits: PdfLimits | None = None,
    resume_from: PdfProgress | None = None,
    heartbeat: Callable[[PdfProgress], None] = lambda progress: None,
    scratch_dir: Path | None = None,
) -> PdfText:
    """Extracts the text of every page of the PDF in ``source`` into text blobs.

    ``heartbeat`` is called after every stored batch and, with the same progress, every
    few seconds while the parser works. Raises ``UnprocessableContent`` (``encrypted``,
    ``corrupt``, ``too_many_pages``, ``timeout``, ``too_large``) for what the document
    does, ``ChildFailed`` for failures worth a retry.
    """
    limits = limits or PdfLimits()
    progress = resume_from or PdfProgress(page_count=0, next_page=0)
    # The child opens the PDF by path (INPUT_PATH, the file it is handed).
    with _as_file(source, scratch_dir) as file:
        items = run_limited(
            parse_pages,
            INPUT_PATH,
            progress.next_page,
            limits.page_batch,
            limits.max_pages,
            limits=limits.process,
            on_wait=lambda: heartbeat(progress),
            input_file=file,
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
                texts = _batch_texts(item, progress.next_page, limits.page_batch)
                stored = store_text(blob_store, (text + PAGE_END for text in texts))
                progress = PdfProgress(
                    page_count=page_count,
                    next_page=progress.next_page + len(texts),
                    text_locations=(*progress.text_locations, stored.location),
                    chars=progress.chars + sum(len(text) + 1 for text in texts),
                )
                heartbeat(progress)
    if progress.next_page != page_count:
        raise ChildFailed(f"the parser stopped after {progress.next_page} of {page_count} pages")
    return PdfText(
        page_count=page_count, text_locations=progress.text_locations, chars=progress.chars
    )


def parse_pages(path: str, start_page: int, page_batch: int, max_pages: int) -> Iterator[Json]:
    """Runs in the child: yields the page count, then ``{"first_page", "texts"}`` batches."""
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
            yield {
                "first_page": first,
                "texts": [_page_text(pdfium, document, index) for index in range(first, last)],
            }


def _page_text(pdfium: Any, document: Any, index: int) -> str:
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


def _page_count(item: Json) -> int:
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        raise ChildFailed(f"the parser reported no page count: {item!r}")
    return item


def _batch_texts(item: Json, first_page: int, page_batch: int) -> list[str]:
    # The child parses hostile input, so what it sends is checked, not trusted.
    if not (
        isinstance(item, dict)
        and item.get("first_page") == first_page
        and isinstance(texts := item.get("texts"), list)
        and 0 < len(texts) <= page_batch
        and all(isinstance(text, str) for text in texts)
    ):
        raise ChildFailed(f"the parser sent an unexpected batch for page {first_page + 1}")
    return [str(text) for text in texts]


@contextmanager
def _as_file(source: BinaryIO, directory: Path | None) -> Iterator[IO[bytes]]:
    """``source`` as a file the child can be handed: itself when it is a file with a
    name (a local blob), else a copy (an object store's stream). pypdfium2 resolves the
    path it is given (``INPUT_PATH`` links to the file's name), so the file needs one;
    Landlock lets the child read that one file and no other of the scratch directory."""
    if _is_named_file(source):
        yield source
        return
    with tempfile.NamedTemporaryFile(prefix="extract-", suffix=".pdf", dir=directory) as copy:
        shutil.copyfileobj(source, copy)
        copy.flush()
        yield copy


def _is_named_file(source: BinaryIO) -> bool:
    try:
        facts = os.fstat(source.fileno())
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return stat.S_ISREG(facts.st_mode) and facts.st_nlink > 0
