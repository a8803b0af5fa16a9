"""OpenDocument (ODT, ODS, ODP) as blocks, with odfpy, mapped as their OOXML kin are.

- ODT: ``text:h`` headings (their outline level), paragraphs, lists (ordered where the
  list style's level is a number, not a bullet; depth from the nesting), tables, sections
  and text boxes opened.
- ODS: per sheet a level-2 heading and a table. Repeated rows and cells (how ODF writes
  a run of equal cells, and how LibreOffice pads a sheet to its full width) are expanded
  only between content and never past the ``max_cells`` budget; a cut is the
  ``truncated`` fact.
- ODP: one page per slide (``draw:page``), the title frame as a level-2 heading, the
  other frames in reading order, speaker notes under a level-3 "Notes" heading.

A password-protected document (encrypted members, listed as such in the manifest) is
refused as ``encrypted``. odfpy reads the XML with expat after ``archive.check_archive``
has refused any DTD; it swallows a parse error of its own, which that check makes moot.

Runs in the limited child.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from typing import Any
from xml.parsers import expat

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.blocks import Block
from infrastructure.processing.formats import emit
from infrastructure.processing.formats.archive import ArchiveLimits, check_archive
from infrastructure.processing.formats.errors import library_errors_are_corrupt
from infrastructure.processing.formats.xlsx import CellBudget
from infrastructure.processing.limits import Json

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
_SVG = "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
_STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
# text:s c="1000000000" is a valid run of spaces; a run longer than this says nothing more.
_MAX_SPACES = 64
# Containers opened to reach the blocks inside (sections, indexes, frames, shapes).
_OPENED = {
    (_TEXT, "section"),
    (_TEXT, "index-body"),
    (_TEXT, "table-of-content"),
    (_TEXT, "illustration-index"),
    (_TEXT, "alphabetical-index"),
    (_TEXT, "user-index"),
    (_TEXT, "bibliography"),
    (_DRAW, "frame"),
    (_DRAW, "text-box"),
    (_DRAW, "custom-shape"),
    (_DRAW, "rect"),
    (_DRAW, "g"),
    (_TABLE, "table-header-rows"),
    (_TABLE, "table-rows"),
    (_TABLE, "table-row-group"),
}
_INLINE_TEXT = {"tab": "\t", "line-break": "\n", "soft-page-break": ""}
# Inline elements whose content is not the paragraph's text: a footnote's body, a
# frame's (read as blocks of its own), an annotation.
_INLINE_SKIPPED = {
    (_TEXT, "note"),
    (_DRAW, "frame"),
    (_OFFICE, "annotation"),
}
_LENGTH = re.compile(r"\s*(-?[\d.]+)\s*(cm|mm|in|pt|pc|px)?")
_TO_CM = {"cm": 1.0, "mm": 0.1, "in": 2.54, "pt": 2.54 / 72, "pc": 2.54 / 6, "px": 2.54 / 96}


def parse_odf(path: str, archive_limits: dict[str, Json], max_cells: int) -> Iterator[Json]:
    """Runs in the child: yields the blocks of the ODT, ODS or ODP at ``path``, then facts."""
    check_archive(path, ArchiveLimits.from_json(archive_limits))
    _refuse_encrypted(path)
    from odf.opendocument import load

    with library_errors_are_corrupt("OpenDocument file"):
        document = load(path)
        walker = _Walker(document, CellBudget(max_cells))
        # The body's content element says what the document is. (odfpy's document.text,
        # .spreadsheet and .presentation are fresh elements, not always the loaded ones.)
        content = next(iter(_children(document.body, None)), None)
        kind = content.qname if content is not None else None
        if kind == (_OFFICE, "text"):
            yield from emit.as_json(walker.blocks(content))
            facts = emit.facts(tables=walker.tables)
        elif kind == (_OFFICE, "spreadsheet"):
            yield from emit.as_json(walker.sheets(content))
            facts = emit.facts(
                sheets=walker.tables, rows=walker.rows, truncated=walker.budget.exhausted
            )
        elif kind == (_OFFICE, "presentation"):
            yield from emit.as_json(walker.slides(content))
            facts = emit.facts(slides=walker.pages)
        else:
            raise UnprocessableContent(
                FailureReason.UNSUPPORTED_TYPE,
                f"OpenDocument files of type {document.mimetype} are not processed",
            )
    yield from emit.as_json([facts])


def _refuse_encrypted(path: str) -> None:
    with zipfile.ZipFile(path) as archive:
        try:
            manifest = archive.read("META-INF/manifest.xml")
        except KeyError:
            return
    encrypted = False

    def element(name: str, _attributes: object) -> None:
        nonlocal encrypted
        encrypted = encrypted or name == f"{_MANIFEST} encryption-data"

    # check_archive has refused any DTD in it, and that it is not well-formed.
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = element
    parser.Parse(manifest, True)
    if encrypted:
        raise UnprocessableContent(
            FailureReason.ENCRYPTED, "the OpenDocument file is encrypted and needs a password"
        )


class _Walker:
    def __init__(self, document: Any, budget: CellBudget) -> None:
        self.budget = budget
        self.tables = self.rows = self.pages = 0
        self._list_styles = _list_styles(document)

    def blocks(self, container: Any) -> Iterator[Block]:
        """The blocks of a text container (the body, a section, a frame, a cell)."""
        # (iterator over children, list style, list depth): iterative, as nesting is free.
        pending: list[tuple[Iterator[Any], str | None, int]] = [
            (iter(container.childNodes), None, -1)
        ]
        while pending:
            children, style, depth = pending[-1]
            node = next(children, None)
            if node is None:
                pending.pop()
                continue
            name = getattr(node, "qname", None)
            if name == (_TEXT, "h"):
                if text := _text(node):
                    level = _int(node.getAttrNS(_TEXT, "outline-level"), 1)
                    yield emit.heading(level, text)
                pending.append((iter(_frames(node)), style, depth))
            elif name == (_TEXT, "p"):
                if text := _text(node):
                    if depth >= 0:
                        yield emit.list_item(text, ordered=self._ordered(style, depth), depth=depth)
                    else:
                        yield emit.paragraph(text)
                pending.append((iter(_frames(node)), style, depth))
            elif name == (_TEXT, "list"):
                own = node.getAttrNS(_TEXT, "style-name")
                pending.append((iter(node.childNodes), own or style, depth + 1))
            elif name in ((_TEXT, "list-item"), (_TEXT, "list-header")):
                pending.append((iter(node.childNodes), style, depth))
            elif name == (_TABLE, "table"):
                self.tables += 1
                yield emit.table(self._rows(node))
            elif name in _OPENED:
                pending.append((iter(node.childNodes), style, depth))

    def sheets(self, spreadsheet: Any) -> Iterator[Block]:
        for sheet in _children(spreadsheet, (_TABLE, "table")):
            self.tables += 1
            yield emit.heading(2, str(sheet.getAttrNS(_TABLE, "name") or f"Sheet {self.tables}"))
            rows = list(self._rows(sheet))
            self.rows += len(rows)
            if rows:
                yield emit.table(rows)

    def slides(self, presentation: Any) -> Iterator[Block]:
        for slide in _children(presentation, (_DRAW, "page")):
            self.pages += 1
            yield emit.page(self.pages)
            frames = sorted(_children(slide, None), key=_position)
            titles = [f for f in frames if f.getAttrNS(_PRESENTATION, "class") == "title"]
            for title in titles:
                if text := _text(title):
                    yield emit.heading(2, text)
            for frame in frames:
                if frame in titles or frame.qname == (_PRESENTATION, "notes"):
                    continue
                yield from self.blocks(_Wrapper([frame]))
            for notes in _children(slide, (_PRESENTATION, "notes")):
                blocks = list(self.blocks(notes))
                if blocks:
                    yield emit.heading(3, "Notes")
                    yield from blocks

    def _rows(self, table: Any) -> Iterator[list[str]]:
        """The table's rows with repeats expanded between content, within the budget."""
        for row in _table_rows(table):
            cells = self._cells(row)
            # Empty rows are dropped, as from a spreadsheet's table: never expanded.
            if not cells:
                continue
            for _ in range(_int(row.getAttrNS(_TABLE, "number-rows-repeated"), 1)):
                if not self.budget.take(len(cells)):
                    return
                yield list(cells)

    def _cells(self, row: Any) -> list[str]:
        cells: list[str] = []
        pending_empty = 0
        for cell in row.childNodes:
            if getattr(cell, "qname", None) not in (
                (_TABLE, "table-cell"),
                (_TABLE, "covered-table-cell"),
            ):
                continue
            text = emit.clean("\n".join(_text(p) for p in _descendants(cell, (_TEXT, "p"))))
            repeat = _int(cell.getAttrNS(_TABLE, "number-columns-repeated"), 1)
            if not text:
                pending_empty += repeat
                continue
            # Expanded only up to the budget: a row's width is paid for from it.
            width = len(cells) + pending_empty + repeat
            if width > self.budget.left:
                self.budget.exhausted = True
                break
            cells.extend([""] * pending_empty + [text] * repeat)
            pending_empty = 0
        return cells

    def _ordered(self, style: str | None, depth: int) -> bool:
        levels = self._list_styles.get(style or "", {})
        return levels.get(depth + 1, False)


class _Wrapper:
    """A container holding the given nodes as children (to walk one frame as a body)."""

    def __init__(self, nodes: list[Any]) -> None:
        self.childNodes = nodes


def _list_styles(document: Any) -> dict[str, dict[int, bool]]:
    """Every list style by name: for each level, whether it is numbered."""
    styles: dict[str, dict[int, bool]] = {}
    for holder in (document.styles, document.automaticstyles):
        for style in _children(holder, (_TEXT, "list-style")):
            levels: dict[int, bool] = {}
            for level in style.childNodes:
                local = getattr(level, "qname", (None, ""))[1]
                if local in ("list-level-style-number", "list-level-style-bullet"):
                    number = _int(level.getAttrNS(_TEXT, "level"), 1)
                    levels[number] = local == "list-level-style-number"
            styles[str(style.getAttrNS(_STYLE, "name"))] = levels
    return styles


def _text(element: Any) -> str:
    """An element's text: spans and links opened, spaces, tabs and line breaks as written,
    notes and frames left out."""
    pieces: list[str] = []
    pending = [iter(element.childNodes)]
    while pending:
        node = next(pending[-1], None)
        if node is None:
            pending.pop()
            continue
        name = getattr(node, "qname", None)
        if name is None:
            pieces.append(str(getattr(node, "data", "")))
        elif name in ((_TEXT, "p"), (_TEXT, "h")):
            # Paragraphs inside (a frame's, a cell's) are lines of the text.
            pieces.append("\n")
            pending.append(iter(node.childNodes))
        elif name == (_TEXT, "s"):
            pieces.append(" " * min(_int(node.getAttrNS(_TEXT, "c"), 1), _MAX_SPACES))
        elif name[0] == _TEXT and name[1] in _INLINE_TEXT:
            pieces.append(_INLINE_TEXT[name[1]])
        elif name not in _INLINE_SKIPPED:
            pending.append(iter(node.childNodes))
    return emit.clean("".join(pieces))


def _frames(paragraph: Any) -> list[Any]:
    """The frames anchored in a paragraph (text boxes, images with captions, tables)."""
    return [
        node for node in paragraph.childNodes if getattr(node, "qname", None) == (_DRAW, "frame")
    ]


def _table_rows(table: Any) -> Iterator[Any]:
    pending = [iter(table.childNodes)]
    while pending:
        node = next(pending[-1], None)
        if node is None:
            pending.pop()
        elif getattr(node, "qname", None) == (_TABLE, "table-row"):
            yield node
        elif getattr(node, "qname", None) in _OPENED:
            pending.append(iter(node.childNodes))


def _children(element: Any, name: tuple[str, str] | None) -> list[Any]:
    """The element children named ``name`` (any element when None)."""
    return [
        node
        for node in element.childNodes
        if getattr(node, "qname", None) is not None and (name is None or node.qname == name)
    ]


def _descendants(element: Any, name: tuple[str, str]) -> Iterator[Any]:
    pending = [iter(element.childNodes)]
    while pending:
        node = next(pending[-1], None)
        if node is None:
            pending.pop()
        elif getattr(node, "qname", None) == name:
            yield node
        elif getattr(node, "qname", None) is not None:
            pending.append(iter(node.childNodes))


def _position(frame: Any) -> tuple[float, float]:
    return (_cm(frame.getAttrNS(_SVG, "y")), _cm(frame.getAttrNS(_SVG, "x")))


def _cm(length: str | None) -> float:
    match = _LENGTH.match(length or "")
    if not match:
        return 0.0
    try:
        return float(match.group(1)) * _TO_CM[match.group(2) or "cm"]
    except ValueError:
        return 0.0


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
