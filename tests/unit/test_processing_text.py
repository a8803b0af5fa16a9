"""Text-like uploads decode whatever their encoding; extracted text is stored as UTF-8 blobs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from application.processing import FailureReason, UnprocessableContent
from infrastructure.blobstore import LocalBlobStore
from infrastructure.processing.blocks import check_block
from infrastructure.processing.text import (
    DecodedText,
    decode_text,
    markdown_blocks,
    paragraphs,
    read_text,
    store_text,
    text_blocks,
)
from tests import corpus

FRENCH = "Le cœur a ses raisons. Crème brûlée, façade, à bientôt, déjà vu.\n"
RUSSIAN = "Привет, мир! Как дела? Это простой русский текст для проверки кодировки.\n"


def decode(data: bytes, max_bytes: int = 1024 * 1024) -> DecodedText:
    return decode_text(io.BytesIO(data), max_bytes=max_bytes)


def test_utf8_text_decodes_as_utf8() -> None:
    text = "Grüße aus Köln \u2013 naïve café, 東京.\n"

    assert decode(text.encode("utf-8")) == DecodedText(text, "utf-8", truncated=False)


def test_a_utf8_byte_order_mark_is_not_part_of_the_text() -> None:
    assert decode(b"\xef\xbb\xbfhello").text == "hello"


@pytest.mark.parametrize(
    "text",
    [
        FRENCH.replace("œ", "oe"),
        "café",
        "naïve café\n",
        "Año nuevo, señor. ¿Qué tal? Mañana.\n",
        "Grüße aus Köln. Die Mädchen gehen über die Straße.\n",
    ],
)
def test_latin1_text_decodes_to_what_was_written(text: str) -> None:
    decoded = decode(text.encode("latin-1"))

    assert decoded.text == text
    assert decoded.encoding == "cp1252"


def test_cp1252_punctuation_decodes_too() -> None:
    text = "“Quoted” — and priced at 5 €.\n"

    assert decode(text.encode("cp1252")).text == text


def test_other_legacy_encodings_are_detected() -> None:
    decoded = decode((RUSSIAN * 3).encode("cp1251"))

    assert decoded.text == RUSSIAN * 3
    assert decoded.encoding == "cp1251"


def test_utf16_with_a_byte_order_mark_decodes() -> None:
    assert decode(FRENCH.encode("utf-16")).text == FRENCH


def test_markdown_csv_and_json_files_are_text(tmp_path: Path) -> None:
    for name, text in [
        ("notes.md", "# Title\n\n* one\n* two\n"),
        ("table.csv", "name,city\nAnaïs,Köln\n"),
        ("data.json", '{"city": "Köln", "n": 1}\n'),
    ]:
        path = corpus.text_file(tmp_path, text, encoding="utf-8", name=name)
        with path.open("rb") as source:
            assert decode_text(source, max_bytes=1024).text == text


def test_an_empty_file_is_empty_text() -> None:
    assert decode(b"") == DecodedText("", "utf-8", truncated=False)


@pytest.mark.parametrize("data", [bytes(range(256)) * 4, b"PK\x03\x04" + bytes(range(200)) * 3])
def test_bytes_that_are_not_text_are_corrupt(data: bytes) -> None:
    with pytest.raises(UnprocessableContent) as failed:
        decode(data)

    assert failed.value.reason is FailureReason.CORRUPT


def test_only_the_first_max_bytes_are_decoded() -> None:
    decoded = decode(("ab" * 100).encode(), max_bytes=10)

    assert decoded == DecodedText("ababababab", "utf-8", truncated=True)


def test_a_character_cut_at_the_bound_does_not_spoil_the_text() -> None:
    # "é" is two bytes in UTF-8: the bound falls between them.
    decoded = decode("ééééé".encode(), max_bytes=5)

    assert decoded == DecodedText("éé", "utf-8", truncated=True)


def test_stored_text_reads_back_across_blobs(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    first = store_text(store, "Köln, ")
    second = store_text(store, iter(["café ", "and ", "more"]))

    assert read_text(store, [first.location, second.location], max_chars=1000) == (
        "Köln, café and more"
    )
    assert read_text(store, [first.location, second.location], max_chars=8) == "Köln, ca"
    assert first.size == len("Köln, ".encode())


# --- Text as blocks ---------------------------------------------------------------------


def test_paragraphs_are_what_blank_lines_separate() -> None:
    text = "\nFirst line,\nsame paragraph.\n\n \t \n\nSecond.\r\n\r\nThird.\n\n\n"

    assert list(paragraphs(text)) == ["First line,\nsame paragraph.", "Second.", "Third."]


def test_plain_text_is_paragraph_blocks() -> None:
    blocks = [check_block(block) for block in text_blocks("One.\n\nTwo.")]

    assert blocks == [{"type": "paragraph", "text": "One."}, {"type": "paragraph", "text": "Two."}]


def test_markdown_headings_lists_tables_and_fences_become_blocks() -> None:
    markdown = (
        "# Title #\n"
        "Text on\ntwo lines.\n"
        "## Steps\n"
        "1. first\n"
        "   - detail\n"
        "2) second\n"
        "\n"
        "| Name | Value |\n"
        "|:-----|------:|\n"
        "| a\\|b | 1 |\n"
        "\n"
        "```\n"
        "# a comment, not a heading\n"
        "```\n"
        "#hashtag is text\n"
    )

    blocks = [check_block(block) for block in markdown_blocks(markdown)]

    assert blocks == [
        {"type": "heading", "level": 1, "text": "Title"},
        {"type": "paragraph", "text": "Text on\ntwo lines."},
        {"type": "heading", "level": 2, "text": "Steps"},
        {"type": "list_item", "text": "first", "ordered": True, "depth": 0},
        {"type": "list_item", "text": "detail", "ordered": False, "depth": 1},
        {"type": "list_item", "text": "second", "ordered": True, "depth": 0},
        {"type": "table", "rows": [["Name", "Value"], ["a|b", "1"]]},
        {"type": "paragraph", "text": "# a comment, not a heading"},
        {"type": "paragraph", "text": "#hashtag is text"},
    ]


def test_reading_markdown_takes_linear_time_on_hostile_lines() -> None:
    # Patterns that backtrack over runs of spaces would take hours on these.
    hostile = "|\n" + " " * 200_000 + "\n# a" + " " * 200_000 + "b\n- " + " " * 200_000 + "\n"

    blocks = list(markdown_blocks(hostile * 5))

    assert [block["type"] for block in blocks][:2] == ["paragraph", "heading"]
