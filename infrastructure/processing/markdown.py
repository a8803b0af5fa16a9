"""Blocks as Markdown (CommonMark with GitHub's pipe tables), one block at a time.

The rendering is meant for people and for retrieval tools, so it escapes only what would
change the document's structure: a line of text that Markdown would read as a heading, a
list item, a quote, a fence or a table row gets a backslash before that character, and
every ``<`` is escaped, so no HTML from a document reaches a page that renders the
Markdown and no text can pass for a page marker. Emphasis characters are left as they are.

Conventions:

- headings ``#`` to ``######``; paragraphs keep their line breaks;
- list items ``-`` or ``1.`` (numbered in order), indented four spaces per depth, which
  nests under either kind of parent;
- tables as pipe tables, the first row the header; ``|`` is escaped and a line break in
  a cell becomes ``<br>``;
- fields as ``**Name:** value``;
- attachments as a list under an ``Attachments`` heading;
- paged formats: ``<!-- page N -->`` on a line of its own before each page's content
  (an HTML comment: invisible when rendered, easy to find with a pattern).
"""

from __future__ import annotations

import re

from infrastructure.processing.blocks import Block, ListItemBlock

INDENT = "    "
ATTACHMENTS_HEADING = "## Attachments"
# The start of a line that Markdown reads as structure: ATX heading, quote, list marker,
# setext underline, table row, code fence; or an ordered list marker.
_BLOCK_START = re.compile(r"[ \t]*(?:[#>+\-*=|`~]|\d{1,9}(?=[.)]))")
_WHITESPACE = re.compile(r"\s+")
# The same starts, after a line break of a text whose lines are stripped (a pattern that
# starts with a literal character is fast to scan for; the first line is done apart).
_LINE_START = re.compile(r"\n(?:[#>+\-*=|`~]|\d{1,9}(?=[.)]))")
# A line break and the blank lines and indentation after it: one line break. (Spaces
# before a break are left: a pattern starting with them would be tried at every space.)
_LINE_ENDS = re.compile(r"\n\s*")


def page_marker(number: int) -> str:
    """The line that starts page ``number`` in a paged document's Markdown."""
    return f"<!-- page {number} -->"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) as one space."""
    return _WHITESPACE.sub(" ", text).strip()


def escape_inline(text: str) -> str:
    """Text inside a line (after a marker) as Markdown: no HTML, no page marker."""
    return text.replace("<", "\\<")


def escape_line(line: str) -> str:
    """One line of text as Markdown that reads as that text, not as structure."""
    line = escape_inline(line)
    match = _BLOCK_START.match(line)
    if match is None:
        return line
    stripped = line.lstrip(" \t")
    marker_at = len(line) - len(stripped)
    if stripped[0].isdigit():
        # "1. text" -> "1\. text": the escaped dot ends the marker.
        marker_at = match.end()
    return line[:marker_at] + "\\" + line[marker_at:]


def escape_text(text: str) -> str:
    """A paragraph's text as Markdown: each line escaped, its indentation and blank lines
    dropped (four leading spaces would make a code block, a blank line a new paragraph).

    Whole-text passes rather than a loop over lines: a PDF page has dozens of them.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("<", "\\<")
    text = _LINE_ENDS.sub("\n", text).strip()
    return _LINE_START.sub(_escape_marker, "\n" + text)[1:]


def _escape_marker(match: re.Match[str]) -> str:
    marker = match.group()
    return marker + "\\" if marker[1].isdigit() else "\n\\" + marker[1:]


def escape_cell(text: str) -> str:
    cell = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    cell = cell.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<")
    return "<br>".join(part.strip() for part in cell.split("\n"))


def table(rows: list[list[str]]) -> str:
    """A pipe table; short rows are padded, the first row is the header."""
    width = max((len(row) for row in rows), default=0)
    if width == 0:
        return ""
    lines = []
    for index, row in enumerate(rows):
        cells = [escape_cell(cell) for cell in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append("|" + "---|" * width)
    return "\n".join(lines)


class ListNumbering:
    """Numbers and depths of consecutive list items: an ordered item gets the next number
    at its depth, and a depth never jumps by more than one below the item before."""

    def __init__(self) -> None:
        # Per depth: whether the list there is ordered, and its items so far.
        self._counters: list[tuple[bool, int]] = []

    def reset(self) -> None:
        self._counters = []

    def next(self, item: ListItemBlock) -> tuple[int, str]:
        """The item's depth and its marker (``-`` or ``N.``). A numbered list that follows
        a bulleted one at the same depth (or the other way round) starts again at 1."""
        ordered = item["ordered"]
        depth = min(item["depth"], len(self._counters))
        del self._counters[depth + 1 :]
        if len(self._counters) == depth or self._counters[depth][0] != ordered:
            self._counters[depth:] = [(ordered, 0)]
        count = self._counters[depth][1] + 1
        self._counters[depth] = (ordered, count)
        return depth, f"{count}." if ordered else "-"


class MarkdownRenderer:
    """Renders blocks in document order; ``render`` gives the text to append for one."""

    def __init__(self) -> None:
        self._previous: str | None = None
        self._numbering = ListNumbering()

    def render(self, block: Block) -> str:
        """The Markdown for ``block``, with what separates it from the block before
        (empty when the block has nothing to show)."""
        body = self._body(block)
        if not body:
            return ""
        kind = block["type"]
        if self._previous is None:
            separator = ""
        elif kind == self._previous and kind in ("list_item", "attachment"):
            separator = "\n"
        else:
            separator = "\n\n"
        self._previous = kind
        return separator + body

    def _body(self, block: Block) -> str:
        if block["type"] not in ("list_item", "page"):
            self._numbering.reset()
        match block["type"]:
            case "page":
                return page_marker(block["number"])
            case "heading":
                text = one_line(block["text"])
                return f"{'#' * block['level']} {escape_inline(text)}" if text else ""
            case "paragraph":
                return escape_text(block["text"])
            case "list_item":
                text = escape_text(block["text"])
                if not text:
                    return ""
                depth, marker = self._numbering.next(block)
                indent = INDENT * depth
                continuation = "\n" + indent + " " * (len(marker) + 1)
                return indent + marker + " " + text.replace("\n", continuation)
            case "table":
                return table(block["rows"])
            case "field":
                value = escape_inline(one_line(block["value"]))
                return f"**{escape_inline(one_line(block['name']))}:** {value}"
            case "attachment":
                item = (
                    f"- {escape_inline(one_line(block['filename'])) or '(unnamed)'} "
                    f"({escape_inline(one_line(block['content_type']))}, {block['size']} bytes)"
                )
                if self._previous == "attachment":
                    return item
                return f"{ATTACHMENTS_HEADING}\n\n{item}"
        return ""  # pragma: no cover - every block type is matched above
