"""Builds the blocks (``infrastructure.processing.blocks``) the format parsers yield.

One constructor per block type, so that every parser produces exactly the keys and value
ranges ``check_block`` accepts, plus the text and table tidying they all need. Also the
one item that is not a block: the parser's facts (counts, ``truncated``), yielded last,
which the parent takes apart from the blocks (``formats.parsing``).

Standard library only: it runs in the parser child.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, cast

from infrastructure.processing.blocks import (
    MAX_HEADING_LEVEL,
    MAX_LIST_DEPTH,
    AttachmentBlock,
    Block,
    FieldBlock,
    HeadingBlock,
    ListItemBlock,
    PageBlock,
    ParagraphBlock,
    TableBlock,
)
from infrastructure.processing.limits import Json

# The key of the facts item: never a block's key (blocks have "type").
FACTS = "facts"
_SPACES = re.compile(r"[^\S\n]+")
_AROUND_NEWLINES = re.compile(r" ?\n[\n ]*")


def page(number: int) -> PageBlock:
    """A page (slide) whose text comes from the document itself, not OCR."""
    return {"type": "page", "number": number, "source": "text", "confidence": None}


def heading(level: int, text: str) -> HeadingBlock:
    return {"type": "heading", "level": min(max(level, 1), MAX_HEADING_LEVEL), "text": text}


def paragraph(text: str) -> ParagraphBlock:
    return {"type": "paragraph", "text": text}


def list_item(text: str, *, ordered: bool, depth: int) -> ListItemBlock:
    depth = min(max(depth, 0), MAX_LIST_DEPTH)
    return {"type": "list_item", "text": text, "ordered": ordered, "depth": depth}


def table(rows: Iterable[Iterable[str]]) -> TableBlock:
    """A table with every row as long as the longest (merged or missing cells are empty)
    and trailing empty rows and columns dropped."""
    grid = [list(row) for row in rows]
    while grid and not any(grid[-1]):
        grid.pop()
    width = max((_used_width(row) for row in grid), default=0)
    return {"type": "table", "rows": [(row + [""] * width)[:width] for row in grid]}


def field(name: str, value: str) -> FieldBlock:
    return {"type": "field", "name": name, "value": value}


def attachment(filename: str, content_type: str, size: int) -> AttachmentBlock:
    return {
        "type": "attachment",
        "filename": filename,
        "content_type": content_type,
        "size": max(size, 0),
    }


def facts(**details: str | bool | int) -> dict[str, Any]:
    """The parser's facts about the document: its last item, after every block."""
    return {FACTS: details}


def as_json(items: Iterable[Block | dict[str, Any]]) -> Iterator[Json]:
    """``items`` as what a child target yields (blocks are JSON objects; their TypedDicts
    are not ``dict[str, Json]`` to mypy)."""
    return cast(Iterator[Json], iter(items))


def clean(text: str) -> str:
    """Text as a block holds it: runs of spaces and tabs as one space, runs of line breaks
    as one, no space around a line break, none at either end, no control characters but
    the line break."""
    text = "".join(ch if ch >= " " or ch == "\n" else " " for ch in text)
    return _AROUND_NEWLINES.sub("\n", _SPACES.sub(" ", text)).strip()


def _used_width(row: list[str]) -> int:
    width = len(row)
    while width and not row[width - 1]:
        width -= 1
    return width
