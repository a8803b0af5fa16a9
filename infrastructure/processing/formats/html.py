"""HTML as blocks, parsed with selectolax's Lexbor engine.

Why Lexbor: it builds the tree the WHATWG HTML standard prescribes (as browsers do), so
tag soup, unclosed paragraphs and misnested lists come out as a reader sees them; it is
C, fast (tens of MB/s) and a small wheel with no dependencies. lxml's HTML parser
(libxml2) predates HTML5 and mends broken markup its own way; html5lib is conformant but
pure Python, about a hundred times slower, and unmaintained.

The mapping: ``h1``-``h6`` headings, paragraphs (any block's inline text, ``br`` as a line
break), ``li`` items of ``ol`` (ordered) or ``ul`` (depth from the nesting), tables (one
row per ``tr``, ``th`` and ``td`` alike, spans padded), ``pre`` with its lines. Left out:
what is not content (``script``, ``style``, ``template``, forms' controls, embedded
objects), what is hidden, and the page's chrome: ``nav``, ``aside``, and a ``header`` or
``footer`` not inside an ``article``, ``main`` or ``section`` (landmark roles alike). The
``title`` is a ``Title`` field.

The charset: a byte-order mark, else a ``<meta>`` declaration in the first 1024 bytes
(WHATWG's labels: "latin1" and "ascii" mean windows-1252), else UTF-8 when the bytes are
valid UTF-8, else detected (charset-normalizer, as for plain text). It is a fact of the
result (``encoding``).

Runs in the limited child.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infrastructure.processing.blocks import Block
from infrastructure.processing.formats import emit
from infrastructure.processing.limits import Json

# Never content.
_SKIPPED = frozenset(
    {
        "head",
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "math",
        "canvas",
        "iframe",
        "object",
        "embed",
        "video",
        "audio",
        "map",
        "button",
        "input",
        "select",
        "textarea",
        "nav",
        "aside",
        "dialog",
    }
)
# Page chrome unless inside content.
_CHROME = frozenset({"header", "footer"})
_CONTENT = frozenset({"article", "main", "section"})
_CHROME_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search"})
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_LISTS = frozenset({"ul", "ol", "menu", "dir"})
# Elements whose start and end break the text into paragraphs.
_BLOCKS = frozenset(
    {
        "address",
        "article",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hgroup",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "p",
        "section",
        "summary",
        "caption",
        "tr",
        "td",
        "th",
        *_LISTS,
    }
)
_MAX_SPAN = 64
_META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_WINDOWS_1252 = frozenset(
    {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "iso_8859-1", "l1", "ascii", "us-ascii"}
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def parse_html(path: str) -> Iterator[Json]:
    """Runs in the child: yields the blocks of the HTML file at ``path``, then its facts."""
    text, encoding = decode_html(Path(path).read_bytes())
    yield from emit.as_json(html_blocks(text))
    yield from emit.as_json([emit.facts(encoding=encoding)])


def html_blocks(markup: str) -> Iterator[Block]:
    """The blocks of an HTML document (also an e-mail's HTML body)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    title = tree.css_first("title")
    if title is not None and (text := emit.clean(title.text())):
        yield emit.field("Title", text)
    if tree.body is not None:
        yield from _Walker().blocks(tree.body)


def decode_html(data: bytes) -> tuple[str, str]:
    """The text of an HTML file and the encoding it was read in."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, "replace"), encoding.removesuffix("-sig")
    declared = _declared_encoding(data[:1024])
    if declared is not None:
        return data.decode(declared, "replace"), declared
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from infrastructure.processing.text import decode_text

    decoded = decode_text(io.BytesIO(data), max_bytes=len(data))
    return decoded.text, decoded.encoding


def _declared_encoding(prefix: bytes) -> str | None:
    match = _META_CHARSET.search(prefix)
    if match is None:
        return None
    label = match.group(1).decode("ascii").lower()
    if label in _WINDOWS_1252:
        return "cp1252"
    if label.startswith("utf-16"):
        # A page that declares UTF-16 in ASCII bytes is not UTF-16 (WHATWG: UTF-8).
        return "utf-8"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


class _Walker:
    """Walks a tree once, iteratively (nesting is unbounded in hostile markup), carrying
    the inline text gathered since the last block boundary."""

    def __init__(self) -> None:
        self._pieces: list[str] = []
        # Per open list, whether it is ordered.
        self._lists: list[bool] = []

    def blocks(self, root: Any) -> Iterator[Block]:
        # (node, leaving it, how many content sections - article, main - are open)
        stack: list[tuple[Any, bool, int]] = [(root, False, 0)]
        while stack:
            node, leaving, content = stack.pop()
            tag = node.tag
            if leaving:
                yield from self._leave(tag)
                continue
            if tag == "-text":
                self._pieces.append(_inline(node.text_content or ""))
                continue
            if not _shown(node, tag, content):
                continue
            if tag == "br":
                self._pieces.append("\n")
            elif tag in _HEADINGS:
                yield from self._flush()
                if text := inline_text(node):
                    yield emit.heading(_HEADINGS[tag], text)
            elif tag == "table":
                yield from self._flush()
                rows = list(_rows(node))
                if rows:
                    yield emit.table(rows)
            elif tag == "pre":
                yield from self._flush()
                if text := _preformatted(node.text(deep=True)):
                    yield emit.paragraph(text)
            else:
                yield from self._enter(tag)
                inner = content + (tag in _CONTENT)
                stack.append((node, True, inner))
                children = list(node.iter(include_text=True))
                stack.extend((child, False, inner) for child in reversed(children))
        yield from self._flush()

    def _enter(self, tag: str) -> Iterator[Block]:
        if tag in _BLOCKS:
            yield from self._flush()
        if tag in _LISTS:
            self._lists.append(tag == "ol")

    def _leave(self, tag: str) -> Iterator[Block]:
        if tag in _BLOCKS:
            yield from self._flush()
        if tag in _LISTS and self._lists:
            self._lists.pop()

    def _flush(self) -> Iterator[Block]:
        text = emit.clean("".join(self._pieces))
        self._pieces.clear()
        if not text:
            return
        if self._lists:
            yield emit.list_item(text, ordered=self._lists[-1], depth=len(self._lists) - 1)
        else:
            yield emit.paragraph(text)


def inline_text(element: Any) -> str:
    """An element's text as one block's: whitespace collapsed, ``br`` and inner blocks as
    line breaks, hidden and non-content elements left out."""
    pieces: list[str] = []
    stack: list[tuple[Any, bool]] = [(child, False) for child in _children_reversed(element)]
    while stack:
        node, leaving = stack.pop()
        tag = node.tag
        if leaving:
            pieces.append("\n")
        elif tag == "-text":
            pieces.append(_inline(node.text_content or ""))
        elif tag == "br":
            pieces.append("\n")
        elif _shown(node, tag, content=1):
            if tag in _BLOCKS or tag in _HEADINGS:
                pieces.append("\n")
                stack.append((node, True))
            stack.extend((child, False) for child in _children_reversed(node))
    return emit.clean("".join(pieces))


def _rows(table: Any) -> Iterator[list[str]]:
    """The table's rows (not those of tables nested in its cells, which are cell text)."""
    stack = _children_reversed(table)
    while stack:
        node = stack.pop()
        if node.tag == "tr":
            row: list[str] = []
            for cell in node.iter():
                if cell.tag in ("td", "th"):
                    row.append(inline_text(cell))
                    span = _int(cell.attributes.get("colspan"), 1)
                    row.extend([""] * min(max(span - 1, 0), _MAX_SPAN))
            yield row
        elif node.tag in ("thead", "tbody", "tfoot"):
            stack.extend(_children_reversed(node))


def _shown(node: Any, tag: str, content: int) -> bool:
    if not isinstance(tag, str) or tag.startswith(("-", "!")) or tag in _SKIPPED:
        return False
    attributes = node.attributes
    if "hidden" in attributes or attributes.get("aria-hidden") == "true":
        return False
    if (attributes.get("role") or "").strip().lower() in _CHROME_ROLES and tag != "body":
        return False
    return not (tag in _CHROME and content == 0)


def _children_reversed(node: Any) -> list[Any]:
    return list(node.iter(include_text=True))[::-1]


def _inline(text: str) -> str:
    # Source line breaks and tabs are spaces in HTML; only br breaks a line.
    return text.replace("\r", " ").replace("\n", " ").replace("\t", " ")


def _preformatted(text: str) -> str:
    lines = [
        "".join(c if c >= " " or c == "\t" else " " for c in line).rstrip()
        for line in text.replace("\r\n", "\n").split("\n")
    ]
    return "\n".join(lines).strip("\n")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
