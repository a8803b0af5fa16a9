"""The blocks a parser child yields: the one shape every format's content takes.

A parser of untrusted content runs in the limited child (``limits.run_limited``) and
yields JSON values. Every format's parser yields *blocks* (dicts below), in document
order; the parent checks each one with ``check_block`` (the child may be hostile, so
nothing it sends is trusted) and hands it to the ``DocumentWriter`` (``document.py``),
which writes the plain text, the Markdown, the chunks and the page facts.

Standard library only.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, TypedDict

# How a page's text was obtained: its own text layer, OCR, or neither (no text at all).
PageSource: TypeAlias = Literal["text", "ocr", "none"]
PAGE_SOURCES: frozenset[str] = frozenset({"text", "ocr", "none"})
MAX_HEADING_LEVEL = 6
MAX_LIST_DEPTH = 8


class PageBlock(TypedDict):
    """Starts page ``number`` (1-based) of a paged format (PDF page, slide, image frame).
    Every block up to the next page block is on this page. ``confidence`` is OCR's mean
    word confidence (0-100) when ``source`` is ``"ocr"``, else None."""

    type: Literal["page"]
    number: int
    source: PageSource
    confidence: float | None


class HeadingBlock(TypedDict):
    type: Literal["heading"]
    level: int  # 1..MAX_HEADING_LEVEL
    text: str


class ParagraphBlock(TypedDict):
    type: Literal["paragraph"]
    text: str


class ListItemBlock(TypedDict):
    type: Literal["list_item"]
    text: str
    ordered: bool
    depth: int  # 0 for a top-level item, up to MAX_LIST_DEPTH


class TableBlock(TypedDict):
    """A table; the first row is its header. Cells are plain text."""

    type: Literal["table"]
    rows: list[list[str]]


class FieldBlock(TypedDict):
    """A named value of the document itself: an e-mail's From, To, Subject, Date."""

    type: Literal["field"]
    name: str
    value: str


class AttachmentBlock(TypedDict):
    """A file carried inside the document (an e-mail attachment): listed, not parsed."""

    type: Literal["attachment"]
    filename: str
    content_type: str
    size: int


Block: TypeAlias = (
    PageBlock
    | HeadingBlock
    | ParagraphBlock
    | ListItemBlock
    | TableBlock
    | FieldBlock
    | AttachmentBlock
)


class BadBlock(ValueError):  # noqa: N818 - says what is wrong
    """The child sent something that is not a block."""


def check_block(value: Any) -> Block:
    """``value`` as a block, or ``BadBlock``: every key present, every type right."""
    if not isinstance(value, dict):
        raise BadBlock(f"not a block: {type(value).__name__}")
    kind = value.get("type")
    if not isinstance(kind, str) or (expected := _KEYS.get(kind)) is None:
        raise BadBlock(f"unknown block type {kind!r}")
    if set(value) != expected:
        raise BadBlock(f"a {kind} block has keys {sorted(value)}, not {sorted(expected)}")
    checks = {
        "page": _page,
        "heading": _heading,
        "paragraph": lambda v: _str(v, "text"),
        "list_item": _list_item,
        "table": _table,
        "field": lambda v: _str(v, "name") and _str(v, "value"),
        "attachment": _attachment,
    }
    if not checks[kind](value):
        raise BadBlock(f"a {kind} block with a value of the wrong type or range")
    return value  # type: ignore[return-value]


_KEYS: dict[str, frozenset[str]] = {
    "page": frozenset({"type", "number", "source", "confidence"}),
    "heading": frozenset({"type", "level", "text"}),
    "paragraph": frozenset({"type", "text"}),
    "list_item": frozenset({"type", "text", "ordered", "depth"}),
    "table": frozenset({"type", "rows"}),
    "field": frozenset({"type", "name", "value"}),
    "attachment": frozenset({"type", "filename", "content_type", "size"}),
}


def _int(value: object, low: int, high: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )


def _str(block: dict[str, Any], key: str) -> bool:
    return isinstance(block[key], str)


def _page(block: dict[str, Any]) -> bool:
    confidence = block["confidence"]
    return (
        _int(block["number"], 1)
        and block["source"] in PAGE_SOURCES
        and (
            confidence is None
            or (
                isinstance(confidence, int | float)
                and not isinstance(confidence, bool)
                and 0 <= confidence <= 100
            )
        )
    )


def _heading(block: dict[str, Any]) -> bool:
    return _int(block["level"], 1, MAX_HEADING_LEVEL) and _str(block, "text")


def _list_item(block: dict[str, Any]) -> bool:
    return (
        _str(block, "text")
        and isinstance(block["ordered"], bool)
        and _int(block["depth"], 0, MAX_LIST_DEPTH)
    )


def _table(block: dict[str, Any]) -> bool:
    rows = block["rows"]
    return isinstance(rows, list) and all(
        isinstance(row, list) and all(isinstance(cell, str) for cell in row) for row in rows
    )


def _attachment(block: dict[str, Any]) -> bool:
    return _str(block, "filename") and _str(block, "content_type") and _int(block["size"], 0)
