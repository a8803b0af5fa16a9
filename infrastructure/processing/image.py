"""Image facts: dimensions and format, read from the header (no decoding, no OCR).

Runs in-process: Pillow reads only the header and checks the file's structure, and the
pixel count is checked before anything could decode pixels, so a decompression bomb
costs nothing but its header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.options import DEFAULT_MAX_PIXELS

# The formats the service accepts (application.processing.IMAGE_TYPES); Pillow tries
# no other plugin on an upload, which keeps its attack surface to these parsers.
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP")


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    format: str
    mode: str


def inspect_image(source: BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageFacts:
    """Reads an image's dimensions and format.

    Raises ``UnprocessableContent``: ``too_large`` above ``max_pixels`` (Pillow refuses above
    twice its own limit whatever ``max_pixels`` says), ``corrupt`` for a file that is not
    an intact image in one of ``FORMATS``.
    """
    try:
        with Image.open(source, formats=FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise _too_large(width * height, max_pixels)
            facts = ImageFacts(
                width=width,
                height=height,
                format=str(image.format),
                mode=image.mode,
            )
            # Walks the file's structure (chunks, checksums) without decoding pixels.
            image.verify()
    except Image.DecompressionBombError as err:
        raise UnprocessableContent(FailureReason.TOO_LARGE, str(err)) from None
    except UnidentifiedImageError:
        raise UnprocessableContent(
            FailureReason.CORRUPT, f"not an image in a supported format ({', '.join(FORMATS)})"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # Pillow reports a damaged file with any of these, SyntaxError included.
        raise UnprocessableContent(FailureReason.CORRUPT, f"damaged image: {err}") from None
    return facts


def _too_large(pixels: int, max_pixels: int) -> UnprocessableContent:
    return UnprocessableContent(
        FailureReason.TOO_LARGE,
        f"the image has {pixels} pixels, more than the {max_pixels} allowed",
    )
