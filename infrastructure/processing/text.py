"""Text in and out of the pipeline: decoding text-like uploads, storing extracted text.

Extracted text is stored as UTF-8 blobs, so only their locations travel through
Temporal. A PDF's text is stored with a form feed after every page (as ``pdftotext``
does), so per-page text survives being stored in several blobs: concatenated in order
they are the document's text, and ``split("\\f")`` gives its pages.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from application.ports import BlobStore, StoredBlob
from application.processing import FailureReason, UnprocessableContent

PAGE_END = "\f"
# Two line breaks or more, with nothing but spaces or tabs between them: a paragraph break.
_PARAGRAPH_BREAK = re.compile(r"\n(?:[^\S\n]*\n)+")
# Markdown read line by line (a simple reading, not CommonMark): ATX headings, list items
# (depth from their indentation, two spaces a level), fences, and pipe tables.
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*))?")
_LIST_ITEM = re.compile(r"([ \t]*)(?:([-*+])|(\d{1,9})[.)])[ \t]+(\S.*)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_TABLE_RULE_CHARACTERS = frozenset(" \t|:-")
_MAX_LIST_DEPTH = 8
_CHUNK = 1024 * 1024
# Single-byte texts, short ones above all, fit many code pages equally well. The
# Encoding Standard reads "latin-1" as windows-1252, the commonest legacy encoding of
# Western text, so it wins when charset-normalizer finds it as good as its first pick.
_PREFERRED_LEGACY = "cp1252"
_CHAOS_TOLERANCE = 0.1


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str
    # True when the file was longer than the bound and only its start was decoded.
    truncated: bool


def decode_text(source: BinaryIO, *, max_bytes: int) -> DecodedText:
    """Decodes a text-like file (plain text, Markdown, CSV, JSON), reading at most ``max_bytes``.

    UTF-8 (with or without BOM) is taken when the bytes are valid UTF-8; otherwise
    charset-normalizer detects the encoding. Raises ``UnprocessableContent(CORRUPT)`` for
    bytes that are not text in any encoding it knows.
    """
    data = source.read(max_bytes + 1)
    truncated = len(data) > max_bytes
    data = data[:max_bytes]
    text = _as_utf8(data, final=not truncated)
    if text is not None:
        return DecodedText(text=text, encoding="utf-8", truncated=truncated)
    encoding = _detect(data)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return DecodedText(
        text=decoder.decode(data, final=not truncated), encoding=encoding, truncated=truncated
    )


def _as_utf8(data: bytes, *, final: bool) -> str | None:
    # A cut through a multi-byte character at the bound is not an error (final=False).
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=final)
    except UnicodeDecodeError:
        return None
    # Valid UTF-8 with NULs in it is more likely UTF-16 without a BOM, or not text.
    return None if "\x00" in text else text


def _detect(data: bytes) -> str:
    # Imported here: the PDF parser's child process imports this module for PAGE_END and
    # pays for every import at each document's start (charset-normalizer: about 20 ms).
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise UnprocessableContent(
            FailureReason.CORRUPT, "the file is not text in a known encoding"
        )
    best = matches[0]
    for match in matches:
        if match.chaos <= best.chaos + _CHAOS_TOLERANCE and (
            _PREFERRED_LEGACY in match.could_be_from_charset
        ):
            return _PREFERRED_LEGACY
    return str(best.encoding)


def paragraphs(text: str) -> Iterator[str]:
    """The paragraphs of ``text``: what blank lines separate, line breaks inside kept.

    Standard library only (the parser children import this module).
    """
    for part in _PARAGRAPH_BREAK.split(text):
        part = part.strip("\r\n")
        if part.strip():
            yield part


def text_blocks(text: str) -> Iterator[dict[str, Any]]:
    """Plain text as blocks: one paragraph block per paragraph."""
    for part in paragraphs(text):
        yield {"type": "paragraph", "text": part}


def markdown_blocks(text: str) -> Iterator[dict[str, Any]]:
    """Markdown as blocks, read line by line: ``#`` headings, ``-``/``*``/``+``/``1.`` list
    items, pipe tables (a header row, then a ``---`` rule), fenced code as a paragraph of
    its own, and paragraphs for the rest. Linear in the text: no pattern can backtrack far.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    paragraph: list[str] = []
    index = 0

    def flush() -> Iterator[dict[str, Any]]:
        if paragraph and "".join(paragraph).strip():
            yield {"type": "paragraph", "text": "\n".join(paragraph)}
        paragraph.clear()

    while index < len(lines):
        line = lines[index]
        index += 1
        if fence := _FENCE.match(line):
            yield from flush()
            marker = fence.group(1)
            while index < len(lines) and not lines[index].lstrip().startswith(marker):
                paragraph.append(lines[index])
                index += 1
            index += 1
            yield from flush()
        elif heading := _HEADING.fullmatch(line):
            yield from flush()
            # A closing sequence of #s is not part of the title.
            title = (heading.group(2) or "").strip()
            if title.endswith("#") and (bare := title.rstrip("#")).endswith((" ", "\t")):
                title = bare.strip()
            if title:
                yield {"type": "heading", "level": len(heading.group(1)), "text": title}
        elif item := _LIST_ITEM.fullmatch(line):
            yield from flush()
            indent = len(item.group(1).expandtabs(4))
            yield {
                "type": "list_item",
                "text": item.group(4).strip(),
                "ordered": item.group(2) is None,
                "depth": min(indent // 2, _MAX_LIST_DEPTH),
            }
        elif "|" in line and index < len(lines) and _is_table_rule(lines[index]):
            yield from flush()
            rows = [_cells(line)]
            index += 1
            while index < len(lines) and "|" in lines[index] and lines[index].strip():
                rows.append(_cells(lines[index]))
                index += 1
            yield {"type": "table", "rows": rows}
        elif line.strip():
            paragraph.append(line)
        else:
            yield from flush()
    yield from flush()


def _is_table_rule(line: str) -> bool:
    """A pipe table's rule under its header (``|---|:-:|``), checked without a pattern
    (one over runs of spaces could take quadratic time on a hostile line)."""
    return "-" in line and "|" in line and set(line) <= _TABLE_RULE_CHARACTERS


def _cells(line: str) -> list[str]:
    row = line.strip()
    row = row.removeprefix("|")
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row)]


def store_text(blob_store: BlobStore, text: str | Iterable[str]) -> StoredBlob:
    """Stores ``text`` (or its pieces, in order) as one UTF-8 blob."""
    writer = blob_store.writer()
    try:
        for piece in [text] if isinstance(text, str) else text:
            encoded = piece.encode("utf-8")
            for start in range(0, len(encoded), _CHUNK):
                writer.write(encoded[start : start + _CHUNK])
        return writer.commit()
    finally:
        writer.abort()


def read_text(blob_store: BlobStore, locations: Iterable[str], *, max_chars: int) -> str:
    """The text stored at ``locations``, concatenated in order, cut at ``max_chars``."""
    pieces: list[str] = []
    wanted = max_chars
    for location in locations:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with blob_store.open(location) as blob:
            while wanted > 0 and (chunk := blob.read(_CHUNK)):
                piece = decoder.decode(chunk)[:wanted]
                pieces.append(piece)
                wanted -= len(piece)
        if wanted <= 0:
            break
    return "".join(pieces)
