"""Heading-aware chunks of a document's text, for retrieval: built as the blocks come.

A chunk holds at most ``max_chars`` characters. Blocks are packed into a chunk in order
until the next one would not fit. A top-level heading (the highest level the document has
used so far) always starts a new chunk, so a chunk never spans two top-level sections; a
lower heading starts one when the chunk is past half full, and otherwise goes into it like
text. A chunk's ``headings`` are the headings that enclose all of it. A block longer than
``max_chars`` is split at the last paragraph break, line break, sentence end or space that
leaves a part at least half full, else cut. ``pages`` are the first and last page the
chunk's text comes from (None when the document has no pages).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from infrastructure.processing.limits import Json

DEFAULT_CHUNK_CHARS = 2000
# Below this a chunk could not hold a heading path and a sentence; a setting floor.
MIN_CHUNK_CHARS = 100
# What ends a sentence: its mark, closing quotes or brackets, then a space.
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*\s")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    headings: list[str]
    pages: tuple[int, int] | None

    def to_json(self) -> dict[str, Json]:
        return {
            "index": self.index,
            "text": self.text,
            "headings": list(self.headings),
            "pages": list(self.pages) if self.pages is not None else None,
            "chars": len(self.text),
        }


@dataclass
class _Open:
    """The chunk being filled."""

    pieces: list[str] = field(default_factory=list)
    chars: int = 0
    headings: list[str] | None = None
    first_page: int | None = None
    last_page: int | None = None
    # Only headings so far: their section's text should follow them in this chunk.
    headings_only: bool = True

    def add(
        self, text: str, joiner: str, headings: list[str], page: int | None, *, heading: bool
    ) -> None:
        self.headings_only = self.headings_only and heading
        if self.pieces:
            self.pieces.append(joiner)
            self.chars += len(joiner)
        self.pieces.append(text)
        self.chars += len(text)
        self.headings = headings if self.headings is None else _common(self.headings, headings)
        if page is not None:
            self.first_page = page if self.first_page is None else self.first_page
            self.last_page = page


class Chunker:
    """Packs text into chunks and hands each finished one to ``emit``."""

    def __init__(self, emit: Callable[[Chunk], None], *, max_chars: int = DEFAULT_CHUNK_CHARS):
        if max_chars < MIN_CHUNK_CHARS:
            raise ValueError(f"chunks need at least {MIN_CHUNK_CHARS} characters")
        self._emit = emit
        self._max = max_chars
        self._open = _Open()
        self._count = 0
        # (level, text) of the headings enclosing the text that comes next.
        self._path: list[tuple[int, str]] = []
        self._top_level: int | None = None

    def heading(self, level: int, text: str, page: int | None) -> None:
        """A heading: it ends the chunk when it is top-level, and encloses what follows."""
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, text))
        if self._top_level is None or level <= self._top_level:
            self._top_level = level
            self._close()
        elif self._open.chars > self._max // 2:
            # A lower heading starts a new chunk too when this one is past half full,
            # rather than end a chunk with little or none of its section's text.
            self._close()
        self._add(text, page, "\n\n", heading=True)

    def text(self, text: str, page: int | None, *, joiner: str = "\n\n") -> None:
        """Text of one block, joined to the text before it in the chunk by ``joiner``."""
        self._add(text, page, joiner, heading=False)

    def _add(self, text: str, page: int | None, joiner: str, *, heading: bool) -> None:
        if not text.strip():
            return
        headings = [heading for _, heading in self._path]
        room = self._max - self._open.chars - (len(joiner) if self._open.pieces else 0)
        first = self._max
        if len(text) > room:
            if self._open.pieces and self._open.headings_only and room >= self._max // 4:
                # Headings alone would make a chunk of no use: their text starts here.
                first = room
            else:
                self._close()
        parts = split_text(text, self._max, first_chars=first)
        for index, part in enumerate(parts):
            if self._open.pieces and self._open.chars + len(joiner) + len(part) > self._max:
                self._close()
            self._open.add(part, joiner, headings, page, heading=heading)
            if index < len(parts) - 1:
                self._close()

    def finish(self) -> None:
        self._close()

    @property
    def count(self) -> int:
        """Chunks emitted so far."""
        return self._count

    def _close(self) -> None:
        chunk = self._open
        if not chunk.pieces:
            return
        first, last = chunk.first_page, chunk.last_page
        self._emit(
            Chunk(
                index=self._count,
                text="".join(chunk.pieces),
                headings=chunk.headings or [],
                pages=(first, last) if first is not None and last is not None else None,
            )
        )
        self._count += 1
        self._open = _Open()


def split_text(text: str, max_chars: int, *, first_chars: int | None = None) -> list[str]:
    """``text`` in parts of at most ``max_chars`` (the first at most ``first_chars``), cut
    at the best boundary in reach.

    Linear in the text's length: each part is found within a window of its size, and each
    is at least half a window unless the text ends.
    """
    parts: list[str] = []
    start = 0
    end = len(text)
    limit = min(first_chars, max_chars) if first_chars is not None else max_chars
    while end - start > limit:
        cut = _cut(text, start, start + limit)
        limit = max_chars
        part = text[start:cut].rstrip()
        if part:
            parts.append(part)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    rest = text[start:].rstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def _cut(text: str, start: int, stop: int) -> int:
    """Where to end the part that starts at ``start`` and may reach ``stop``."""
    floor = start + (stop - start) // 2
    for separator in ("\n\n", "\n"):
        at = text.rfind(separator, floor, stop)
        if at > floor:
            return at
    last_sentence = -1
    for match in _SENTENCE_END.finditer(text, floor, stop):
        last_sentence = match.end()
    if last_sentence > floor:
        return last_sentence
    for at in range(stop, floor, -1):
        if _SPACE.match(text, at):
            return at
    return stop


def _common(first: list[str], second: list[str]) -> list[str]:
    common = []
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        common.append(a)
    return common
