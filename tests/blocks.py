"""Blocks as tests write them, and what a parser yielded, taken apart.

The parsers yield blocks (``infrastructure.processing.blocks``) and then one facts item
(``formats.emit.facts``); ``read`` checks every block as the parent does and returns both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from infrastructure.processing.blocks import check_block
from infrastructure.processing.formats.emit import FACTS
from infrastructure.processing.limits import Json


def read(items: Iterable[Json]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The blocks (each checked) and the facts a parser yielded; facts come last."""
    values = list(items)
    assert isinstance(values[-1], dict)
    assert set(values[-1]) == {FACTS}
    blocks = [dict(check_block(value)) for value in values[:-1]]
    facts = values[-1][FACTS]
    assert isinstance(facts, dict)
    return blocks, facts


def heading(level: int, text: str) -> dict[str, Any]:
    return {"type": "heading", "level": level, "text": text}


def paragraph(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "text": text}


def item(text: str, *, ordered: bool = False, depth: int = 0) -> dict[str, Any]:
    return {"type": "list_item", "text": text, "ordered": ordered, "depth": depth}


def table(rows: list[list[str]]) -> dict[str, Any]:
    return {"type": "table", "rows": rows}


def page(number: int) -> dict[str, Any]:
    return {"type": "page", "number": number, "source": "text", "confidence": None}
