"""``DocumentWriter``: a document's checked blocks, in order, written as the outputs of processing.

Every format's extraction ends here, whatever parsed it. Fed one block at a time, the writer
streams four blobs to the blob store, so memory stays bounded whatever the document's length
(a 1000-page PDF is never held whole):

- the plain text (``text_locations``): blocks separated by a blank line (consecutive list
  items, fields and attachments by a line break), each page of a paged document ending with
  a form feed, an unpaged document with a newline; what the summarizer reads and
  ``GET /artifacts/{id}/text`` serves;
- the Markdown (``markdown_location``), as ``markdown.py`` renders it, page markers included;
- the chunks (``chunks_location``): a JSON array of ``{"index", "text", "headings",
  "pages", "chars"}``, as ``chunks.py`` packs them;
- the page facts (``pages_location``, paged documents only): a JSON array of
  ``{"number", "source", "confidence", "chars"}``, ``chars`` counting the page's text.

It also counts the characters, samples the text for its language, and warns ``no_text``
when no block holds any text (an empty file, a blank page, an image nothing legible is
on); such a document stores no plain text (``char_count`` 0) and is not summarized.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from application.ports import BlobStore, BlobWriter
from application.processing import ContentWarning
from infrastructure.processing.blocks import Block, PageBlock
from infrastructure.processing.chunks import DEFAULT_CHUNK_CHARS, Chunk, Chunker
from infrastructure.processing.language import SAMPLE_CHARS, detect_language
from infrastructure.processing.limits import Json
from infrastructure.processing.markdown import ListNumbering, MarkdownRenderer, one_line

PAGE_END = "\f"
# Blocks of these kinds follow one another on consecutive lines, not paragraphs apart.
_TIGHT = frozenset({"list_item", "field", "attachment"})
# Characters buffered per blob before they are encoded and handed to its writer.
_FLUSH_CHARS = 256 * 1024


@dataclass(frozen=True)
class WrittenDocument:
    """Where a document's outputs are stored, and the facts found writing them."""

    text_locations: list[str]
    markdown_location: str
    chunks_location: str
    # None for an unpaged document (no page blocks): it has no page facts.
    pages_location: str | None
    page_count: int | None
    char_count: int
    chunk_count: int
    language: str | None
    warnings: list[str]


class DocumentWriter:
    """Writes a document's outputs from its blocks; ``finish`` commits them, ``abort`` (or
    leaving a ``with`` block by an exception) discards them."""

    def __init__(self, blob_store: BlobStore, *, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> None:
        self._blob_store = blob_store
        self._text = _TextBlob(blob_store.writer())
        self._markdown = _TextBlob(blob_store.writer())
        self._chunks = _JsonArray(blob_store.writer())
        self._pages: _JsonArray | None = None
        self._renderer = MarkdownRenderer()
        self._chunker = Chunker(self._chunk_done, max_chars=chunk_chars)
        self._numbering = ListNumbering()
        self._page: PageBlock | None = None
        self._page_count = 0
        self._page_chars = 0
        self._previous: str | None = None
        self._has_text = False
        self._sample: list[str] = []
        self._sample_chars = 0
        self._warnings: list[str] = []
        self._finished = False

    def __enter__(self) -> DocumentWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._finished:
            self.abort()

    def add(self, block: Block) -> None:
        """Writes the next block (checked with ``blocks.check_block``) of the document."""
        self._markdown.write(self._renderer.render(block))
        if block["type"] == "page":
            self._end_page()
            self._page = block
            self._page_count += 1
            self._previous = None
            return
        if block["type"] != "list_item":
            self._numbering.reset()
        text = self._plain_text(block)
        if not text.strip():
            return
        content = _content(block)
        if content.strip():
            self._has_text = True
            self._take_sample(content)
        kind = block["type"]
        joiner = "\n" if kind == self._previous and kind in _TIGHT else "\n\n"
        if self._previous is not None:
            self._write_text(joiner)
        self._write_text(text)
        self._previous = kind
        page = self._page["number"] if self._page is not None else None
        if block["type"] == "heading":
            self._chunker.heading(block["level"], text, page)
        else:
            self._chunker.text(text, page, joiner=joiner)

    def warn(self, warning: ContentWarning) -> None:
        """Adds a warning to the result (once), such as a format's ``truncated``."""
        if warning.value not in self._warnings:
            self._warnings.append(warning.value)

    def finish(self) -> WrittenDocument:
        """Commits every output and returns where they are and what was found."""
        self._end_page()
        self._chunker.finish()
        if not self._has_text:
            self.warn(ContentWarning.NO_TEXT)
        elif self._page_count == 0:
            self._write_text("\n")
        self._markdown.write("\n" if self._markdown.chars else "")
        if not self._has_text:
            self._text.abort()
        # The outputs are committed side by side (each commit waits on storage: an fsync,
        # an object store's answer) while the language is detected.
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="commit") as pool:
            markdown = pool.submit(self._markdown.commit)
            chunks = pool.submit(self._chunks.commit)
            pages = pool.submit(self._pages.commit) if self._pages is not None else None
            text = pool.submit(self._text.commit) if self._has_text else None
            language = detect_language("".join(self._sample)) if self._has_text else None
        document = WrittenDocument(
            text_locations=[text.result()] if text is not None else [],
            markdown_location=markdown.result(),
            chunks_location=chunks.result(),
            pages_location=pages.result() if pages is not None else None,
            page_count=self._page_count if self._pages is not None else None,
            char_count=self._text.chars if self._has_text else 0,
            chunk_count=self._chunker.count,
            language=language,
            warnings=list(self._warnings),
        )
        self._finished = True
        return document

    def abort(self) -> None:
        """Discards everything written; safe to call more than once, or after ``finish``."""
        self._finished = True
        for blob in (self._text, self._markdown, self._chunks, self._pages):
            if blob is not None:
                blob.abort()

    def _plain_text(self, block: Block) -> str:
        match block["type"]:
            case "heading":
                return one_line(block["text"])
            case "paragraph":
                return block["text"].strip("\r\n")
            case "list_item":
                depth, marker = self._numbering.next(block)
                return "  " * depth + marker + " " + block["text"].strip()
            case "table":
                rows = block["rows"]
                return "\n".join(" | ".join(one_line(cell) for cell in row) for row in rows)
            case "field":
                return f"{one_line(block['name'])}: {one_line(block['value'])}"
            case "attachment":
                return (
                    f"Attachment: {one_line(block['filename'])} "
                    f"({block['content_type']}, {block['size']} bytes)"
                )
        return ""

    def _write_text(self, text: str) -> None:
        self._text.write(text)
        self._page_chars += len(text)

    def _take_sample(self, content: str) -> None:
        if self._sample_chars < SAMPLE_CHARS:
            piece = content[: SAMPLE_CHARS - self._sample_chars]
            self._sample.append(piece + "\n")
            self._sample_chars += len(piece) + 1

    def _end_page(self) -> None:
        if self._page is None:
            return
        self._text.write(PAGE_END)
        page = self._page
        if self._pages is None:
            self._pages = _JsonArray(self._blob_store.writer())
        self._pages.append(
            {
                "number": page["number"],
                "source": page["source"],
                "confidence": page["confidence"],
                "chars": self._page_chars,
            }
        )
        self._page = None
        self._page_chars = 0

    def _chunk_done(self, chunk: Chunk) -> None:
        self._chunks.append(chunk.to_json())


def _content(block: Block) -> str:
    """The text of a block that counts as the document's text (no labels, no file names)."""
    match block["type"]:
        case "heading" | "paragraph" | "list_item":
            return block["text"]
        case "table":
            return "\n".join(" ".join(row) for row in block["rows"])
        case "field":
            return block["value"]
    return ""


class _TextBlob:
    """A blob written as UTF-8 text, in large writes."""

    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer
        self._buffer: list[str] = []
        self._buffered = 0
        self.chars = 0

    def write(self, text: str) -> None:
        if not text:
            return
        self._buffer.append(text)
        self._buffered += len(text)
        self.chars += len(text)
        if self._buffered >= _FLUSH_CHARS:
            self._flush()

    def commit(self) -> str:
        self._flush()
        return self._writer.commit().location

    def abort(self) -> None:
        self._buffer = []
        self._writer.abort()

    def _flush(self) -> None:
        if self._buffer:
            # A lone surrogate from a parser becomes "?" rather than an unwritable blob.
            self._writer.write("".join(self._buffer).encode("utf-8", "replace"))
            self._buffer = []
            self._buffered = 0


class _JsonArray(_TextBlob):
    """A blob holding one JSON array, written an element at a time."""

    def __init__(self, writer: BlobWriter) -> None:
        super().__init__(writer)
        self._count = 0

    def append(self, value: Json) -> None:
        self.write(("[\n" if self._count == 0 else ",\n") + json.dumps(value, ensure_ascii=False))
        self._count += 1

    def commit(self) -> str:
        self.write("[]\n" if self._count == 0 else "\n]\n")
        return super().commit()
