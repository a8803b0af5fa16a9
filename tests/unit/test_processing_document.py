"""DocumentWriter: blocks in, plain text, Markdown, chunks and page facts out (blob store fake)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.processing.blocks import Block, check_block
from infrastructure.processing.chunks import Chunker, split_text
from infrastructure.processing.document import DocumentWriter, WrittenDocument
from infrastructure.processing.language import detect_language
from tests.fakes import FakeBlobStore

ENGLISH = (
    "The workflow records every step it takes, so a worker that crashes loses nothing. "
    "Another worker replays the history and carries on where the first one stopped."
)
GERMAN = (
    "Der Arbeitsablauf zeichnet jeden Schritt auf, den er macht, damit nichts verloren geht. "
    "Ein anderer Arbeiter liest die Geschichte und macht dort weiter, wo der erste aufhörte."
)


def page(number: int, source: str = "text", confidence: float | None = None) -> Block:
    return check_block(
        {"type": "page", "number": number, "source": source, "confidence": confidence}
    )


def heading(text: str, level: int = 1) -> Block:
    return check_block({"type": "heading", "level": level, "text": text})


def paragraph(text: str) -> Block:
    return check_block({"type": "paragraph", "text": text})


def item(text: str, *, ordered: bool = False, depth: int = 0) -> Block:
    return check_block({"type": "list_item", "text": text, "ordered": ordered, "depth": depth})


class Written:
    """A finished document and its outputs, read back from the fake store."""

    def __init__(self, store: FakeBlobStore, document: WrittenDocument) -> None:
        self.document = document
        self.text = "".join(store.blobs[location].decode() for location in document.text_locations)
        self.markdown = store.blobs[document.markdown_location].decode()
        self.chunks: list[dict[str, Any]] = json.loads(store.blobs[document.chunks_location])
        pages = document.pages_location
        self.pages: list[dict[str, Any]] | None = (
            json.loads(store.blobs[pages]) if pages is not None else None
        )


def write(blocks: list[Block], *, chunk_chars: int = 2000) -> Written:
    store = FakeBlobStore()
    with DocumentWriter(store, chunk_chars=chunk_chars) as writer:
        for block in blocks:
            writer.add(block)
        document = writer.finish()
    return Written(store, document)


# --- Plain text -------------------------------------------------------------------------


def test_an_unpaged_documents_text_is_its_blocks_a_blank_line_apart() -> None:
    written = write([heading("Title"), paragraph("One.\nStill one."), item("a"), item("b")])

    assert written.text == "Title\n\nOne.\nStill one.\n\n- a\n- b\n"
    assert written.document.char_count == len(written.text)
    assert (written.document.page_count, written.document.pages_location) == (None, None)


def test_each_page_of_a_paged_documents_text_ends_with_a_form_feed() -> None:
    written = write([page(1), paragraph("First."), paragraph("Again."), page(2), page(3)])

    assert written.text == "First.\n\nAgain.\f\f\f"
    assert written.document.page_count == 3


# --- Markdown ---------------------------------------------------------------------------


def test_headings_paragraphs_and_lists_are_markdown() -> None:
    written = write(
        [
            heading("Title"),
            heading("Part", level=3),
            paragraph("Line one\n    line two"),
            item("first", ordered=True),
            item("nested", depth=1),
            item("deeper", ordered=True, depth=2),
            item("second", ordered=True),
            paragraph("After."),
            item("again", ordered=True),
        ]
    )

    assert written.markdown == (
        "# Title\n\n### Part\n\nLine one\nline two\n\n"
        "1. first\n    - nested\n        1. deeper\n2. second\n\nAfter.\n\n1. again\n"
    )


def test_a_list_item_too_deep_for_its_parent_nests_one_level_below_it() -> None:
    written = write([item("top"), item("jumped", depth=3)])

    assert written.markdown == "- top\n    - jumped\n"


def test_a_numbered_list_after_a_bulleted_one_at_the_same_depth_starts_at_one() -> None:
    written = write(
        [item("dot"), item("dot"), item("one", ordered=True), item("two", ordered=True)]
    )

    assert written.markdown == "- dot\n- dot\n1. one\n2. two\n"


def test_text_that_markdown_would_read_as_structure_is_escaped() -> None:
    written = write(
        [paragraph("# not a heading\n- not a list\n2024. not a number\n<script>x</script>")]
    )

    assert written.markdown == (
        "\\# not a heading\n\\- not a list\n2024\\. not a number\n\\<script>x\\</script>\n"
    )


def test_a_table_is_a_pipe_table_with_its_cells_escaped() -> None:
    rows = [["Name", "Note"], ["a|b", "two\nlines"], ["short"]]

    written = write([check_block({"type": "table", "rows": rows})])

    assert written.markdown == (
        "| Name | Note |\n|---|---|\n| a\\|b | two<br>lines |\n| short |  |\n"
    )
    assert written.text == "Name | Note\na|b | two lines\nshort\n"


def test_fields_and_attachments_are_labelled_lines_and_a_list() -> None:
    written = write(
        [
            check_block({"type": "field", "name": "From", "value": "Ann <ann@example.org>"}),
            check_block({"type": "field", "name": "Subject", "value": "Figures"}),
            paragraph("See attached."),
            check_block(
                {
                    "type": "attachment",
                    "filename": "a.pdf",
                    "content_type": "application/pdf",
                    "size": 10,
                }
            ),
            check_block(
                {"type": "attachment", "filename": "b.csv", "content_type": "text/csv", "size": 2}
            ),
        ]
    )

    assert written.markdown == (
        "**From:** Ann \\<ann@example.org>\n\n**Subject:** Figures\n\nSee attached.\n\n"
        "## Attachments\n\n- a.pdf (application/pdf, 10 bytes)\n- b.csv (text/csv, 2 bytes)\n"
    )
    assert written.text.startswith("From: Ann <ann@example.org>\nSubject: Figures\n\n")


def test_each_page_of_a_paged_document_starts_with_a_marker() -> None:
    written = write([page(1), paragraph("One."), page(2), paragraph("Two.")])

    assert written.markdown == "<!-- page 1 -->\n\nOne.\n\n<!-- page 2 -->\n\nTwo.\n"


def test_text_cannot_pass_for_a_page_marker() -> None:
    written = write([paragraph("<!-- page 9 -->")])

    # Markers are lines of their own: "\\<!-- page 9 -->" is text, and shows as it.
    assert written.markdown.splitlines() == ["\\<!-- page 9 -->"]


# --- Page facts -------------------------------------------------------------------------


def test_page_facts_say_where_each_pages_text_came_from_and_how_much_there_is() -> None:
    written = write(
        [page(1), paragraph("Layer."), page(2, "ocr", 91.5), paragraph("Seen."), page(3, "none")]
    )

    assert written.pages == [
        {"number": 1, "source": "text", "confidence": None, "chars": 6},
        {"number": 2, "source": "ocr", "confidence": 91.5, "chars": 5},
        {"number": 3, "source": "none", "confidence": None, "chars": 0},
    ]


# --- Chunks -----------------------------------------------------------------------------


def test_small_sections_under_one_top_level_heading_share_a_chunk() -> None:
    written = write(
        [
            heading("Guide"),
            paragraph("Intro."),
            heading("Install", 2),
            paragraph("Run it."),
            heading("Reference"),
            paragraph("Details."),
        ]
    )

    assert written.chunks == [
        {
            "index": 0,
            "text": "Guide\n\nIntro.\n\nInstall\n\nRun it.",
            "headings": ["Guide"],
            "pages": None,
            "chars": 31,
        },
        {
            "index": 1,
            "text": "Reference\n\nDetails.",
            "headings": ["Reference"],
            "pages": None,
            "chars": 19,
        },
    ]


def test_chunks_stay_within_their_size_and_name_the_headings_enclosing_them() -> None:
    sentences = [f"Sentence number {n} says something about the topic." for n in range(60)]
    written = write(
        [heading("Manual"), heading("Setup", 2), paragraph(" ".join(sentences))],
        chunk_chars=300,
    )

    chunks = written.chunks
    assert len(chunks) > 5
    assert all(chunk["chars"] == len(chunk["text"]) <= 300 for chunk in chunks)
    # The first chunk holds the heading "Manual" itself, the others are all under "Setup".
    assert chunks[0]["headings"] == ["Manual"]
    assert chunks[0]["text"].startswith("Manual\n\nSetup\n\nSentence number 0 says")
    assert all(chunk["headings"] == ["Manual", "Setup"] for chunk in chunks[1:])
    # Cut at sentence ends: every chunk ends with one.
    assert all(chunk["text"].endswith(".") for chunk in chunks)
    assert " ".join(chunk["text"] for chunk in chunks[1:]) in " ".join(sentences)
    assert [chunk["index"] for chunk in chunks] == list(range(len(chunks)))


def test_a_chunk_names_the_pages_its_text_comes_from() -> None:
    written = write(
        [page(1), paragraph("a" * 80), page(2), paragraph("b" * 80), page(3), paragraph("c" * 80)],
        chunk_chars=170,
    )

    assert [chunk["pages"] for chunk in written.chunks] == [[1, 2], [3, 3]]


def test_text_without_any_boundary_is_cut_at_the_size() -> None:
    assert split_text("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]


def test_a_long_text_is_split_at_line_breaks_before_sentences_and_words() -> None:
    text = "The first line of words, long enough.\n" + "second line with more words. " * 3

    parts = split_text(text, 60)

    assert parts[0] == "The first line of words, long enough."
    assert all(len(part) <= 60 for part in parts)
    assert " ".join(parts).split() == text.split()


def test_chunks_smaller_than_a_sentence_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        Chunker(lambda chunk: None, max_chars=50)


# --- Language and warnings --------------------------------------------------------------


def test_the_language_of_the_text_is_detected() -> None:
    assert write([paragraph(ENGLISH)]).document.language == "en"
    assert write([heading("Bericht"), paragraph(GERMAN)]).document.language == "de"


@pytest.mark.parametrize("text", ["OK", "12 345 678", "Fig. 3"])
def test_too_little_text_has_no_language(text: str) -> None:
    assert write([paragraph(text)]).document.language is None
    assert detect_language(text) is None


def test_a_document_without_text_warns_no_text_and_stores_no_text() -> None:
    written = write([page(1, "none"), paragraph("  \n "), page(2, "none")])

    document = written.document
    assert document.warnings == ["no_text"]
    assert (document.text_locations, document.char_count, document.language) == ([], 0, None)
    assert written.chunks == []
    assert written.markdown == "<!-- page 1 -->\n\n<!-- page 2 -->\n"
    assert document.page_count == 2


def test_an_empty_document_warns_no_text() -> None:
    written = write([])

    assert written.document.warnings == ["no_text"]
    assert (written.markdown, written.chunks) == ("", [])


def test_attachments_alone_are_no_text() -> None:
    attachment = {"type": "attachment", "filename": "a.bin", "content_type": "x/y", "size": 1}

    assert write([check_block(attachment)]).document.warnings == ["no_text"]


# --- Streaming and failure --------------------------------------------------------------


def test_the_outputs_are_written_while_blocks_come_not_at_the_end() -> None:
    store = FakeBlobStore()
    writes: list[int] = []
    original = store.writer

    def counting_writer() -> Any:
        writer = original()
        real_write = writer.write

        def write(chunk: bytes) -> None:
            writes.append(len(chunk))
            real_write(chunk)

        writer.write = write  # type: ignore[method-assign]
        return writer

    store.writer = counting_writer  # type: ignore[method-assign]
    writer = DocumentWriter(store)
    for number in range(1, 201):
        writer.add(page(number))
        writer.add(paragraph(f"Page {number}. " + "word " * 400))
    before_finish = sum(writes)
    writer.finish()

    # Each of the four outputs holds back at most one buffer (256 KiB) and one block.
    assert sum(writes) - before_finish < 4 * (256 * 1024 + 2100)
    assert before_finish > 700_000


def test_an_aborted_document_leaves_nothing_stored() -> None:
    store = FakeBlobStore()

    def parse_then_fail() -> None:
        with DocumentWriter(store) as writer:
            writer.add(page(1))
            writer.add(paragraph(ENGLISH))
            raise RuntimeError("the parser failed")

    with pytest.raises(RuntimeError):
        parse_then_fail()

    assert store.blobs == {}
