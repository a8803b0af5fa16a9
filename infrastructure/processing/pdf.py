"""PDF text extraction with pypdfium2 (PDFium), resumable page batch by page batch.

PDFium is fast and permissively licensed (PyMuPDF is AGPL), but it is native code fed
untrusted input, and not thread-safe: every extraction runs in its own child process
under ``limits.run_limited``. The child reports the page count (refusing documents over
the page cap before reading any page), then the blocks of one batch of pages at a time:
per page a ``page`` block and its paragraphs (``page_blocks``; a text layer is split into
paragraphs by the parent). The parent checks each batch, stores it as a blob of JSON
lines, hands its blocks to the ``DocumentWriter`` and reports progress, which is what an
activity heartbeats. A retried activity passes its last heartbeat back as
``resume_from``: the stored batches are fed to a new writer again and the child starts at
the first page not yet stored, so a retry parses no stored page twice and writes the same
outputs.

A page without a usable text layer is OCRed in the same child (``ocr.read_pdf_page``).
OCR takes seconds a page, so a batch holding OCRed pages is sent once it has taken
``OcrOptions.batch_seconds``, and a child whose CPU or wall-clock limit would not see one
more OCRed page through stops before it (``{"stopped_at": page}``): the parent starts the
next child at that page, each child within the limits a hostile file gets. Wiring in an
activity::

    details = activity.info().heartbeat_details
    with blob_store.open(location) as blob, DocumentWriter(blob_store) as writer:
        extract_pdf(
            blob,
            writer,
            blob_store=blob_store,
            limits=limits,
            ocr=ocr_options,
            resume_from=PdfProgress.from_details(details[0]) if details else None,
            heartbeat=lambda progress: activity.heartbeat(progress.to_details()),
        )
        document = writer.finish()
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from application.ports import BlobNotFound, BlobStore
from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.blocks import BadBlock, Block, check_block
from infrastructure.processing.limits import (
    INPUT_PATH,
    ChildFailed,
    Json,
    ProcessLimits,
    run_limited,
)
from infrastructure.processing.ocr import Budget, OcrOptions, page_allowance, read_pdf_page
from infrastructure.processing.text import PAGE_END, paragraphs, store_text

if TYPE_CHECKING:
    from infrastructure.processing.document import DocumentWriter


# What the fork server imports before forking this parser's children besides PDFium: what
# a page without a usable text layer needs to be rendered and OCRed (Pillow, the OCR
# engine's binding). Loaded once and shared, and not mapped anew inside a child's
# address-space limit, which would leave PDFium less of it on the next page.
FORK_SERVER_PRELOAD = ("PIL.Image", "tesserocr")


# The key of a page block, as the child sends it, that holds the page's text layer when
# that is the page's source; the parent makes its paragraph blocks.
TEXT_LAYER = "text_layer"


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
    # Pages (from 1) whose OCR reached its deadline (they keep what was read by then).
    ocr_timed_out: tuple[int, ...] = ()

    def to_details(self) -> dict[str, Json]:
        return {
            "page_count": self.page_count,
            "next_page": self.next_page,
            "block_locations": list(self.block_locations),
            "ocr_timed_out": list(self.ocr_timed_out),
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
                ocr_timed_out=tuple(int(page) for page in details.get("ocr_timed_out", ())),
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
    ocr: OcrOptions | None = None,
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
    if not all_stored(blob_store, progress.block_locations):
        progress = PdfProgress(page_count=0, next_page=0)
    for location in progress.block_locations:
        for block in read_blocks(blob_store, location):
            writer.add(block)
    ocr = ocr or OcrOptions()
    page_count = progress.page_count
    # The child opens the PDF by path (INPUT_PATH, the file it is handed; each child
    # opens it anew).
    with _as_file(source, scratch_dir) as file:
        # One child, unless OCR makes it stop short of its limits: then one more from where
        # it stopped. Each child reads a page at least, so this ends.
        while True:
            first_page = progress.next_page
            items = run_limited(
                parse_pages,
                INPUT_PATH,
                progress.next_page,
                limits.page_batch,
                limits.max_pages,
                ocr.to_json(),
                limits.process.cpu_seconds,
                limits.process.wall_seconds,
                limits=limits.process,
                # The progress as it is when the child goes quiet, not as it was here.
                on_wait=lambda: heartbeat(progress),  # noqa: B023
                input_file=file,
            )
            stopped = False
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
                    if _stopped_at(item, progress.next_page, first_page):
                        stopped = True
                        break
                    blocks, pages = _batch_blocks(
                        item, progress.next_page, limits.page_batch, page_count
                    )
                    timed_out = _timed_out(item, progress.next_page, pages)
                    stored = store_blocks(blob_store, blocks)
                    progress = PdfProgress(
                        page_count=page_count,
                        next_page=progress.next_page + pages,
                        block_locations=(*progress.block_locations, stored),
                        ocr_timed_out=(*progress.ocr_timed_out, *timed_out),
                    )
                    heartbeat(progress)
                    for block in blocks:
                        writer.add(block)
            if not stopped:
                break
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


def parse_pages(
    path: str,
    start_page: int,
    page_batch: int,
    max_pages: int,
    ocr: Json = None,
    cpu_seconds: float = float("inf"),
    wall_seconds: float = float("inf"),
) -> Iterator[Json]:
    """Runs in the child: yields the page count, then ``{"first_page", "blocks",
    "ocr_timed_out"}`` batches; ``{"stopped_at": page}`` when its limits (``cpu_seconds``,
    ``wall_seconds``) would not see that page's OCR through (the parent goes on in a fresh
    child)."""
    # Imported here so that only child processes ever load PDFium.
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    options = OcrOptions.from_json(ocr) if ocr is not None else OcrOptions(mode="off")
    budget = Budget(cpu_seconds=cpu_seconds, wall_seconds=wall_seconds)
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
        first = start_page
        while first < page_count:
            started = time.monotonic()
            blocks: list[Json] = []
            timed_out: list[Json] = []
            index = first
            while index < page_count and index - first < page_batch:
                # The child's first page is always read: every child makes progress.
                allowed = index == start_page or budget.allows(page_allowance(options))
                read = page_blocks(pdfium, document, index, options, ocr_allowed=allowed)
                if read is None:
                    if blocks:
                        yield {"first_page": first, "blocks": blocks, "ocr_timed_out": timed_out}
                    yield {"stopped_at": index}
                    return
                page, ocred, page_timed_out = read
                blocks.extend(page)
                if page_timed_out:
                    timed_out.append(index + 1)
                index += 1
                if ocred and time.monotonic() - started >= options.batch_seconds:
                    break
            yield {"first_page": first, "blocks": blocks, "ocr_timed_out": timed_out}
            first = index


def page_blocks(
    pdfium: Any, document: Any, index: int, ocr: OcrOptions, *, ocr_allowed: bool = True
) -> tuple[list[Json], bool, bool] | None:
    """Runs in the child: the blocks of page ``index`` (from 0): its ``page`` block, then its
    paragraphs, from its text layer or OCR (``ocr.read_pdf_page``); whether it was OCRed,
    and whether OCR reached its deadline. None when the page needs OCR and
    ``ocr_allowed`` is false. The one place that decides how a page's text is had."""
    page = _page(pdfium, document, index)
    try:
        text = _text_layer(page)
        read = read_pdf_page(pdfium, page, text, ocr, ocr_allowed=ocr_allowed)
    finally:
        page.close()
    if read is None:
        return None
    page_block: dict[str, Json] = {
        "type": "page",
        "number": index + 1,
        "source": read.source,
        "confidence": read.confidence,
    }
    blocks: list[Json] = [page_block]
    if read.paragraphs is not None:
        blocks.extend({"type": "paragraph", "text": part} for part in read.paragraphs)
    elif read.source == "text":
        # The parent splits a text layer into paragraphs (``_batch_blocks``): it has time
        # to spare while the child reads the next pages, the child has none.
        page_block[TEXT_LAYER] = text
    return blocks, read.ocred, read.timed_out


def _page(pdfium: Any, document: Any, index: int) -> Any:
    try:
        return document[index]
    except pdfium.PdfiumError:
        raise UnprocessableContent(
            FailureReason.CORRUPT, f"page {index + 1} of the PDF cannot be read"
        ) from None


def _text_layer(page: Any) -> str:
    """A page's text layer as PDFium reads it, less the non-character U+FFFE with which it
    marks a hyphenation point (a soft hyphen). Line ends stay PDFium's CRLF: the parent
    mends them (``_layer_paragraphs``)."""
    textpage = page.get_textpage()
    try:
        text = str(textpage.get_text_range())
    finally:
        textpage.close()
    # (Looked for first, at C speed: replacing copies the page.)
    return text.replace("\ufffe", "") if "\ufffe" in text else text


def _layer_paragraphs(layer: str) -> Iterator[str]:
    """The paragraphs of a page's text layer from the child, its line ends made ``\n``
    (a form feed is the stored page separator: it becomes one too)."""
    layer = layer.replace("\r\n", "\n").replace("\r", "\n").replace(PAGE_END, "\n")
    return paragraphs(layer)


def all_stored(blob_store: BlobStore, locations: tuple[str, ...]) -> bool:
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


def _stopped_at(item: Json, next_page: int, first_page: int) -> bool:
    """Whether ``item`` says the child stopped at ``next_page``; a child stops only after
    reading a page of its own, anything else is the child's failure."""
    if not (isinstance(item, dict) and "stopped_at" in item):
        return False
    if item["stopped_at"] != next_page or next_page == first_page:
        raise ChildFailed(f"the parser stopped oddly at page {next_page + 1}: {item!r}")
    return True


def _timed_out(item: Json, first_page: int, pages: int) -> tuple[int, ...]:
    """The pages of a checked batch whose OCR reached its deadline (numbers from 1)."""
    numbers = item.get("ocr_timed_out", []) if isinstance(item, dict) else None
    found: list[int] = []
    for number in numbers if isinstance(numbers, list) else [None]:
        if isinstance(number, bool) or not isinstance(number, int):
            raise ChildFailed(f"the parser sent bad OCR facts for page {first_page + 1}")
        if not first_page < number <= first_page + pages:
            raise ChildFailed(f"the parser sent bad OCR facts for page {first_page + 1}")
        found.append(number)
    return tuple(found)


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
        blocks = []
        for value in values:
            layer = value.pop(TEXT_LAYER, None) if isinstance(value, dict) else None
            blocks.append(check_block(value))
            if layer is None:
                continue
            if not (isinstance(layer, str) and blocks[-1]["type"] == "page"):
                raise BadBlock(f"a text layer goes with a page, as a string: {value!r:.80}")
            blocks.extend(
                check_block({"type": "paragraph", "text": part})
                for part in _layer_paragraphs(layer)
            )
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
