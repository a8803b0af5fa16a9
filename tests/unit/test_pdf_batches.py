"""What the PDF parser's child sends for a batch of pages, as the parent checks it."""

from __future__ import annotations

import pytest

from infrastructure.processing.limits import ChildFailed, Json
from infrastructure.processing.pdf import TEXT_LAYER, _batch_blocks


def page(number: int, **extra: Json) -> dict[str, Json]:
    return {"type": "page", "number": number, "source": "text", "confidence": None, **extra}


def test_a_pages_text_layer_becomes_its_paragraphs_with_mended_line_ends() -> None:
    item: Json = {
        "first_page": 4,
        "blocks": [page(5, **{TEXT_LAYER: "Title\r\n\r\nfirst line\r\nsecond\fline\r\n"})],
    }

    blocks, pages = _batch_blocks(item, 4, 25, 10)

    assert pages == 1
    assert blocks == [
        page(5),
        {"type": "paragraph", "text": "Title"},
        {"type": "paragraph", "text": "first line\nsecond\nline"},
    ]


@pytest.mark.parametrize(
    "blocks",
    [
        [page(1), {"type": "paragraph", "text": "x", TEXT_LAYER: "smuggled"}],
        [{**page(1), TEXT_LAYER: ["not", "text"]}],
        [page(1, **{TEXT_LAYER: 7})],
    ],
    ids=["on a paragraph", "a list", "a number"],
)
def test_a_text_layer_anywhere_but_on_a_page_as_text_is_the_childs_failure(
    blocks: list[Json],
) -> None:
    with pytest.raises(ChildFailed, match="bad block for page 1"):
        _batch_blocks({"first_page": 0, "blocks": blocks}, 0, 25, 3)


def test_pages_out_of_order_are_the_childs_failure() -> None:
    with pytest.raises(ChildFailed, match="out of order"):
        _batch_blocks({"first_page": 0, "blocks": [page(2)]}, 0, 25, 3)
