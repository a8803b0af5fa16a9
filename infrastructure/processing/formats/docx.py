"""DOCX (Word) as blocks, with python-docx: headings, paragraphs, lists, tables.

python-docx opens the package (and refuses one whose main part is not a Word document);
the body is then read at the XML level, because its object layer skips what real
documents are full of: content controls (``w:sdt``) around whole sections, text in
tracked insertions and text boxes, list numbering inherited from a style.

- A heading is a paragraph whose style (or a style it is based on) is "Title" (level 1)
  or "heading N", or that has an outline level; the style's *name*, which Word keeps in
  English whatever the interface language.
- A list item is a paragraph with numbering (its own or its style's): ordered unless the
  level's number format is a bullet, its depth the numbering level.
- A table's merged cells repeat nothing: a cell spanning columns is followed by empty ones.
- Text boxes follow the paragraph they are anchored in. Headers, footers, footnotes and
  comments are left out: they repeat on every page or sit outside the text's flow.

Runs in the limited child, after ``archive.check_archive``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from infrastructure.processing.blocks import Block
from infrastructure.processing.formats import emit
from infrastructure.processing.formats.archive import ArchiveLimits, check_archive
from infrastructure.processing.formats.errors import library_errors_are_corrupt
from infrastructure.processing.limits import Json

_NS = {
    "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
}
_W = "{" + _NS["w"] + "}"
_HEADING_NAME = re.compile(r"heading\s*(\d)", re.IGNORECASE)
# Word's built-in "List Bullet 2", "List Number 3": a list of its own at level 0, indented
# as level N - 1 would be.
_LIST_NAME = re.compile(r"list\s*(?:bullet|number)\s*(\d)", re.IGNORECASE)
# A paragraph's text in document order. Deleted text is in w:delText (not matched), and
# markup-compatibility fallbacks repeat what their w:Choice says. $depth keeps a text
# box's text out of the paragraph it is anchored in (it is read as paragraphs of its own).
_TEXT = (
    "(.//w:r/w:t | .//w:r/w:tab | .//w:r/w:br | .//w:r/w:cr | .//w:r/w:noBreakHyphen)"
    "[not(ancestor::mc:Fallback)][count(ancestor::w:txbxContent) = $depth]"
)
_TEXT_BOXES = (
    ".//w:txbxContent[not(ancestor::mc:Fallback)][count(ancestor::w:txbxContent) = $depth]"
)
_RUN_TEXT = {"tab": "\t", "br": "\n", "cr": "\n", "noBreakHyphen": "-"}


def parse_docx(path: str, archive_limits: dict[str, Json]) -> Iterator[Json]:
    """Runs in the child: yields the blocks of the DOCX at ``path``, then its facts."""
    check_archive(path, ArchiveLimits.from_json(archive_limits))
    import docx

    with library_errors_are_corrupt("Word document"):
        document = docx.Document(path)
        body = _Body(document)
        yield from emit.as_json(body.blocks(document.element.body))
    yield from emit.as_json([emit.facts(tables=body.tables)])


class _Body:
    """Walks a body (or a cell's, or a text box's content), knowing the styles and the
    numbering definitions."""

    def __init__(self, document: Any) -> None:
        from lxml import etree

        self._text = etree.XPath(_TEXT, namespaces=_NS)
        self._text_boxes = etree.XPath(_TEXT_BOXES, namespaces=_NS)
        self._styles = _styles(document.styles.element)
        self._numbering = document.part.numbering_part.element
        self._formats: dict[tuple[str, int], bool] = {}
        self.tables = 0

    def blocks(self, container: Any, depth: int = 0) -> Iterator[Block]:
        # Iterative over nesting: a hostile document may nest content controls deeply.
        pending = [iter(container.iterchildren())]
        while pending:
            element = next(pending[-1], None)
            if element is None:
                pending.pop()
            elif element.tag == _W + "p":
                yield from self._paragraph(element, depth)
            elif element.tag == _W + "tbl":
                self.tables += 1
                yield emit.table(self._rows(element, depth))
            elif element.tag in (_W + "sdt", _W + "customXml", _W + "sdtContent"):
                pending.append(iter(element.iterchildren()))

    def _paragraph(self, p: Any, depth: int) -> Iterator[Block]:
        text = emit.clean(self.text_of(p, depth))
        if text:
            properties = self._properties(p)
            level = properties.heading_level
            numbering = properties.numbering
            if level is not None:
                yield emit.heading(level, text)
            elif numbering is not None:
                num_id, ilvl = numbering
                yield emit.list_item(
                    text,
                    ordered=self._ordered(num_id, ilvl),
                    depth=ilvl or properties.list_depth,
                )
            else:
                yield emit.paragraph(text)
        for box in self._text_boxes(p, depth=depth):
            yield from self.blocks(box, depth + 1)

    def text_of(self, element: Any, depth: int) -> str:
        pieces = []
        for node in self._text(element, depth=depth):
            local = node.tag.rpartition("}")[2]
            pieces.append(node.text or "" if local == "t" else _RUN_TEXT.get(local, ""))
        return "".join(pieces)

    def _rows(self, tbl: Any, depth: int) -> Iterator[list[str]]:
        for tr in tbl.iterchildren(_W + "tr"):
            row: list[str] = []
            for tc in tr.iterchildren(_W + "tc"):
                texts = (self.text_of(p, depth) for p in tc.iter(_W + "p"))
                row.append(emit.clean("\n".join(texts)))
                span = tc.find("w:tcPr/w:gridSpan", _NS)
                extra = _int(span.get(_W + "val")) - 1 if span is not None else 0
                row.extend([""] * min(max(extra, 0), 64))
            yield row

    def _properties(self, p: Any) -> _Properties:
        own = p.find("w:pPr", _NS)
        style_id = None
        found = _Properties()
        if own is not None:
            found = found.merged(_Properties.of(own))
            style = own.find("w:pStyle", _NS)
            style_id = style.get(_W + "val") if style is not None else None
        seen: set[str] = set()
        while style_id is not None and style_id in self._styles and style_id not in seen:
            seen.add(style_id)
            style_properties, style_id = self._styles[style_id]
            found = found.merged(style_properties)
        return found

    def _ordered(self, num_id: str, ilvl: int) -> bool:
        key = (num_id, ilvl)
        if key not in self._formats:
            self._formats[key] = _number_format(self._numbering, num_id, ilvl) not in (
                "bullet",
                "none",
                None,
            )
        return self._formats[key]


class _Properties:
    """What a paragraph's or style's properties say about it; unset is None."""

    def __init__(
        self,
        heading_level: int | None = None,
        numbering: tuple[str, int] | None = None,
        list_depth: int = 0,
    ) -> None:
        self.heading_level = heading_level
        self.numbering = numbering
        self.list_depth = list_depth
        self._numbering_set = False
        self._heading_set = False

    @classmethod
    def of(cls, ppr: Any, style_name: str = "") -> _Properties:
        found = cls()
        match = _HEADING_NAME.fullmatch(style_name.strip())
        list_name = _LIST_NAME.fullmatch(style_name.strip())
        found.list_depth = int(list_name.group(1)) - 1 if list_name else 0
        if style_name.strip().lower() == "title":
            found.heading_level, found._heading_set = 1, True
        elif match and 1 <= int(match.group(1)) <= 9:
            found.heading_level, found._heading_set = int(match.group(1)), True
        outline = ppr.find("w:outlineLvl", _NS) if ppr is not None else None
        if not found._heading_set and outline is not None:
            value = _int(outline.get(_W + "val"), default=9)
            # Level 9 is "body text": explicitly no heading.
            found.heading_level = value + 1 if 0 <= value < 9 else None
            found._heading_set = True
        num_pr = ppr.find("w:numPr", _NS) if ppr is not None else None
        if num_pr is not None:
            num_id = num_pr.find("w:numId", _NS)
            ilvl = num_pr.find("w:ilvl", _NS)
            list_id: str | None = num_id.get(_W + "val") if num_id is not None else None
            level = _int(ilvl.get(_W + "val")) if ilvl is not None else 0
            # numId 0 removes numbering a style would give.
            found.numbering = (list_id, level) if list_id not in (None, "0") else None
            found._numbering_set = list_id is not None
        return found

    def merged(self, inherited: _Properties) -> _Properties:
        """These properties, with what ``inherited`` (a base style's) says where they are
        unset."""
        merged = _Properties(
            self.heading_level, self.numbering, self.list_depth or inherited.list_depth
        )
        merged._heading_set = self._heading_set or inherited._heading_set
        merged._numbering_set = self._numbering_set or inherited._numbering_set
        if not self._heading_set:
            merged.heading_level = inherited.heading_level
        if not self._numbering_set:
            merged.numbering = inherited.numbering
        return merged


def _styles(styles: Any) -> dict[str, tuple[_Properties, str | None]]:
    """Every paragraph style by id: its own properties and the id of its base style."""
    found: dict[str, tuple[_Properties, str | None]] = {}
    for style in styles.iterfind("w:style", _NS):
        style_id = style.get(_W + "styleId")
        if style_id is None:
            continue
        name = style.find("w:name", _NS)
        based_on = style.find("w:basedOn", _NS)
        properties = _Properties.of(
            style.find("w:pPr", _NS), name.get(_W + "val", "") if name is not None else ""
        )
        found[style_id] = (properties, based_on.get(_W + "val") if based_on is not None else None)
    return found


def _number_format(numbering: Any, num_id: str, ilvl: int) -> str | None:
    """The number format (``decimal``, ``bullet``, ...) of level ``ilvl`` of list ``num_id``."""
    from lxml import etree

    def xpath(path: str, element: Any, **variables: str) -> list[Any]:
        return list(etree.XPath(path, namespaces=_NS)(element, **variables))

    nums = xpath("w:num[@w:numId=$id]", numbering, id=num_id)
    if not nums:
        return None
    override = xpath("w:lvlOverride[@w:ilvl=$lvl]/w:lvl/w:numFmt/@w:val", nums[0], lvl=str(ilvl))
    if override:
        return str(override[0])
    abstract = xpath("w:abstractNumId/@w:val", nums[0])
    if not abstract:
        return None
    formats = xpath(
        "w:abstractNum[@w:abstractNumId=$id]/w:lvl[@w:ilvl=$lvl]/w:numFmt/@w:val",
        numbering,
        id=str(abstract[0]),
        lvl=str(ilvl),
    )
    return str(formats[0]) if formats else None


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
