"""PPTX (PowerPoint) as blocks, with python-pptx: one page per slide.

Each slide starts with a ``page`` block (its text is the slide's own: source ``text``),
then its title as a level-2 heading, then its shapes in reading order (top to bottom,
then left to right; groups opened): text as paragraphs or list items, tables as tables.
A paragraph is a list item where it has a bullet or number of its own, or sits in a body
placeholder (whose bullets come from the slide master) without ``buNone``; its depth is
its indent level. The speaker notes follow under a level-3 "Notes" heading: they are
often where a deck's actual sentences are.

Runs in the limited child, after ``archive.check_archive``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from infrastructure.processing.blocks import Block
from infrastructure.processing.formats import emit
from infrastructure.processing.formats.archive import ArchiveLimits, check_archive
from infrastructure.processing.formats.errors import library_errors_are_corrupt
from infrastructure.processing.limits import Json

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
# Groups may nest; a hostile file could nest them without end.
_MAX_GROUP_DEPTH = 32


def parse_pptx(path: str, archive_limits: dict[str, Json]) -> Iterator[Json]:
    """Runs in the child: yields each slide's page block and content, then the facts."""
    check_archive(path, ArchiveLimits.from_json(archive_limits))
    import pptx

    slides = 0
    with library_errors_are_corrupt("PowerPoint presentation"):
        presentation = pptx.Presentation(path)
        for number, slide in enumerate(presentation.slides, start=1):
            slides = number
            yield from emit.as_json(_slide(number, slide))
    yield from emit.as_json([emit.facts(slides=slides)])


def _slide(number: int, slide: Any) -> Iterator[Block]:
    from pptx.enum.shapes import PP_PLACEHOLDER

    yield emit.page(number)
    title = slide.shapes.title
    if title is not None and (text := emit.clean(title.text_frame.text)):
        yield emit.heading(2, text)
    for shape in _reading_order(slide.shapes):
        if title is not None and shape.shape_id == title.shape_id:
            continue
        if getattr(shape, "has_table", False):
            yield emit.table(
                [emit.clean(cell.text) for cell in row.cells] for row in shape.table.rows
            )
        elif shape.has_text_frame:
            bulleted = shape.is_placeholder and shape.placeholder_format.type in (
                PP_PLACEHOLDER.BODY,
                PP_PLACEHOLDER.OBJECT,
            )
            yield from _text_frame(shape.text_frame, bulleted=bulleted)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        blocks = list(_text_frame(notes, bulleted=False)) if notes is not None else []
        if blocks:
            yield emit.heading(3, "Notes")
            yield from blocks


def _reading_order(shapes: Any, depth: int = 0) -> list[Any]:
    """Every shape with text or a table, groups opened, top to bottom and left to right."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    found: list[tuple[int, int, Any]] = []
    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            if depth < _MAX_GROUP_DEPTH:
                found.extend(
                    (shape.top or 0, shape.left or 0, inner)
                    for inner in _reading_order(shape.shapes, depth + 1)
                )
        elif getattr(shape, "has_table", False) or shape.has_text_frame:
            found.append((shape.top or 0, shape.left or 0, shape))
    found.sort(key=lambda item: (item[0], item[1]))
    return [shape for _, _, shape in found]


def _text_frame(frame: Any, *, bulleted: bool) -> Iterator[Block]:
    for paragraph in frame.paragraphs:
        # python-pptx gives a line break inside a paragraph as a vertical tab.
        text = emit.clean(paragraph.text.replace("\v", "\n"))
        if not text:
            continue
        bullet = _bullet(paragraph._p)
        if bullet == "number":
            yield emit.list_item(text, ordered=True, depth=paragraph.level)
        elif bullet == "char" or (bulleted and bullet is None):
            yield emit.list_item(text, ordered=False, depth=paragraph.level)
        else:
            yield emit.paragraph(text)


def _bullet(p: Any) -> str | None:
    """``"number"``, ``"char"`` or ``"none"`` where the paragraph sets its own bullet,
    else None (it inherits its shape's)."""
    ppr = p.find(_A + "pPr")
    if ppr is None:
        return None
    if ppr.find(_A + "buAutoNum") is not None:
        return "number"
    if ppr.find(_A + "buChar") is not None or ppr.find(_A + "buBlip") is not None:
        return "char"
    if ppr.find(_A + "buNone") is not None:
        return "none"
    return None
