"""Images are read in the limited child: their facts, and each frame OCRed as a page.

Real child processes, real Pillow and Tesseract; hostile images (bombs, frame floods,
damaged files) fail with a reason, each in one attempt.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.blocks import Block
from infrastructure.processing.image import (
    DEFAULT_MAX_FRAMES,
    ImageExtraction,
    ImageFacts,
    extract_image,
)
from infrastructure.processing.limits import ProcessLimits
from infrastructure.processing.ocr import OcrOptions
from infrastructure.processing.options import DEFAULT_MAX_PIXELS
from infrastructure.processing.pdf import PdfProgress
from tests import corpus

LIMITS = ProcessLimits(cpu_seconds=60, wall_seconds=120)


def page(text: str, *, size: int = 40, height: int = 400) -> Image.Image:
    """A 200-dpi greyscale 'scan' holding ``text``, one line."""
    image = Image.new("L", (1700, height), 255)
    ImageDraw.Draw(image).text((100, 150), text, font=ImageFont.load_default(size=size), fill=0)
    return image


def extract(
    path: Path | bytes,
    *,
    ocr: OcrOptions | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> tuple[ImageExtraction, list[Block]]:
    blocks: list[Block] = []
    source = io.BytesIO(path) if isinstance(path, bytes) else path.open("rb")
    with source:
        result = extract_image(
            source,
            limits=LIMITS,
            ocr=ocr or OcrOptions(),
            on_block=blocks.append,
            max_pixels=max_pixels,
            max_frames=max_frames,
        )
    return result, blocks


def reason_for(path: Path | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> FailureReason:
    with pytest.raises(UnprocessableContent) as failed:
        extract(path, max_pixels=max_pixels)
    return failed.value.reason


def texts(blocks: list[Block]) -> list[str]:
    return [block["text"] for block in blocks if block["type"] == "paragraph"]


def test_a_png_gives_its_facts_and_the_text_on_it(tmp_path: Path) -> None:
    path = tmp_path / "note.png"
    page("Invoice 2024-117 is due in March").save(path, dpi=(200, 200))

    result, blocks = extract(path)

    assert result.facts == ImageFacts(width=1700, height=400, format="PNG", mode="L", frames=1)
    assert blocks[0]["type"] == "page"
    assert (blocks[0]["number"], blocks[0]["source"]) == (1, "ocr")
    assert blocks[0]["confidence"] is not None
    assert blocks[0]["confidence"] > 80
    assert texts(blocks) == ["Invoice 2024-117 is due in March"]
    assert result.timed_out_pages == ()


def test_a_jpeg_photo_of_text_is_read(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    page("Meeting moved to Thursday").convert("RGB").save(path, quality=85)

    result, blocks = extract(path)

    assert (result.facts.format, result.facts.mode) == ("JPEG", "RGB")
    assert texts(blocks) == ["Meeting moved to Thursday"]


def test_a_transparent_png_is_read_on_white(tmp_path: Path) -> None:
    # Black text on a transparent background whose hidden colour is black too.
    text = page("Transparent background")
    image = Image.new("RGBA", text.size, (0, 0, 0, 0))
    image.putalpha(text.point(lambda value: 255 - value))
    path = tmp_path / "clear.png"
    image.save(path)

    _, blocks = extract(path)

    assert texts(blocks) == ["Transparent background"]


def test_each_page_of_a_multipage_tiff_is_a_page_in_order(tmp_path: Path) -> None:
    lines = ["First page of the scan", "Second page of the scan", "Third page of the scan"]
    path = corpus.multipage_tiff(tmp_path, [page(line) for line in lines])

    result, blocks = extract(path)

    assert result.facts.frames == 3
    assert [(b["number"], b["source"]) for b in blocks if b["type"] == "page"] == [
        (1, "ocr"),
        (2, "ocr"),
        (3, "ocr"),
    ]
    assert texts(blocks) == lines


def test_a_long_scan_is_read_by_several_children_each_within_its_limits(
    tmp_path: Path,
) -> None:
    # A page may take 28.25 s (ocr.page_allowance of a 21 s deadline): a child with 28.5 s
    # reads one page and stops, and the next child goes on from the next page.
    lines = [f"Page number {n} of a long scan" for n in range(1, 5)]
    path = corpus.multipage_tiff(tmp_path, [page(line, height=2200) for line in lines])
    beats: list[PdfProgress] = []

    blocks: list[Block] = []
    with path.open("rb") as source:
        result = extract_image(
            source,
            limits=ProcessLimits(cpu_seconds=28, wall_seconds=28.5),
            ocr=OcrOptions(page_timeout_seconds=21),
            on_block=blocks.append,
            heartbeat=beats.append,
        )

    assert texts(blocks) == lines
    assert result.children == 4
    # Each child's frame stored and reported before the next child starts.
    assert sorted({beat.next_page for beat in beats}) == [1, 2, 3, 4]


def test_a_page_past_its_ocr_deadline_keeps_the_document(tmp_path: Path) -> None:
    dense = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(dense)
    for line in range(60):
        draw.text((60, 40 + 35 * line), "dense words " * 12, font=ImageFont.load_default(24))
    path = corpus.multipage_tiff(tmp_path, [dense, page("A quick page")])

    result, blocks = extract(path, ocr=OcrOptions(page_timeout_seconds=0.05))

    assert 1 in result.timed_out_pages
    assert [b["number"] for b in blocks if b["type"] == "page"] == [1, 2]


def test_with_ocr_off_an_image_gives_its_facts_and_empty_pages(tmp_path: Path) -> None:
    path = corpus.multipage_tiff(tmp_path, [page("Not read"), page("Nor this")])

    result, blocks = extract(path, ocr=OcrOptions(mode="off"))

    assert result.facts.frames == 2
    assert blocks == [
        {"type": "page", "number": 1, "source": "none", "confidence": None},
        {"type": "page", "number": 2, "source": "none", "confidence": None},
    ]


def test_an_image_with_nothing_legible_has_an_empty_page(tmp_path: Path) -> None:
    result, blocks = extract(corpus.png_image(tmp_path, width=640, height=480))

    assert result.facts.frames == 1
    assert blocks == [{"type": "page", "number": 1, "source": "none", "confidence": None}]


# --- hostile and damaged images: refused with a reason ------------------------------------


def test_an_image_over_the_pixel_limit_is_too_large(tmp_path: Path) -> None:
    path = corpus.png_image(tmp_path, width=64, height=32)

    assert reason_for(path, max_pixels=64 * 32 - 1) is FailureReason.TOO_LARGE


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    assert reason_for(corpus.pixel_bomb_png(tmp_path)) is FailureReason.TOO_LARGE


def test_a_tiff_whose_later_page_is_a_bomb_is_refused_at_that_page(tmp_path: Path) -> None:
    assert reason_for(corpus.huge_frame_tiff(tmp_path)) is FailureReason.TOO_LARGE


def test_a_tiff_with_thousands_of_pages_is_refused_before_any_is_decoded(
    tmp_path: Path,
) -> None:
    path = corpus.many_frames_tiff(tmp_path, 5000)

    with pytest.raises(UnprocessableContent) as failed:
        extract(path, max_frames=1000)

    assert failed.value.reason is FailureReason.TOO_MANY_PAGES
    assert "1000" in failed.value.message


def test_a_truncated_image_is_corrupt(tmp_path: Path) -> None:
    assert reason_for(corpus.truncated_png(tmp_path)) is FailureReason.CORRUPT


def test_a_file_that_is_no_image_is_corrupt(tmp_path: Path) -> None:
    assert reason_for(corpus.zip_disguised_as_pdf(tmp_path)) is FailureReason.CORRUPT


def test_formats_outside_the_accepted_ones_are_not_even_parsed() -> None:
    # A valid PPM: Pillow reads it, but no accepted format is PPM.
    ppm = b"P6 2 2 255\n" + b"\xff\x00\x00" * 4

    assert reason_for(ppm) is FailureReason.CORRUPT
