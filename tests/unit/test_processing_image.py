"""Images give their dimensions and format; bombs and damaged files fail with a reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.image import ImageFacts, inspect_image
from tests import corpus


def inspect(path: Path, **kwargs: int) -> ImageFacts:
    with path.open("rb") as source:
        return inspect_image(source, **kwargs)


def reason_for(path: Path, **kwargs: int) -> FailureReason:
    with pytest.raises(UnprocessableContent) as failed:
        inspect(path, **kwargs)
    return failed.value.reason


def test_a_png_gives_its_dimensions_and_format(tmp_path: Path) -> None:
    facts = inspect(corpus.png_image(tmp_path, width=64, height=32))

    assert facts == ImageFacts(width=64, height=32, format="PNG", mode="RGB")


def test_a_jpeg_gives_its_dimensions_and_format(tmp_path: Path) -> None:
    facts = inspect(corpus.jpeg_image(tmp_path, width=48, height=40))

    assert (facts.width, facts.height, facts.format) == (48, 40, "JPEG")


def test_an_image_over_the_pixel_limit_is_too_large(tmp_path: Path) -> None:
    path = corpus.png_image(tmp_path, width=64, height=32)

    assert reason_for(path, max_pixels=64 * 32 - 1) is FailureReason.TOO_LARGE


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    assert reason_for(corpus.pixel_bomb_png(tmp_path)) is FailureReason.TOO_LARGE


def test_a_truncated_image_is_corrupt(tmp_path: Path) -> None:
    assert reason_for(corpus.truncated_png(tmp_path)) is FailureReason.CORRUPT


def test_a_file_that_is_no_image_is_corrupt(tmp_path: Path) -> None:
    assert reason_for(corpus.zip_disguised_as_pdf(tmp_path)) is FailureReason.CORRUPT


def test_formats_outside_the_accepted_ones_are_not_even_parsed() -> None:
    # A valid PPM: Pillow reads it, but no accepted format is PPM.
    ppm = b"P6 2 2 255\n" + b"\xff\x00\x00" * 4

    with pytest.raises(UnprocessableContent) as failed:
        inspect_image(io.BytesIO(ppm))

    assert failed.value.reason is FailureReason.CORRUPT
