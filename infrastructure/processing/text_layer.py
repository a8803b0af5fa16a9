"""Whether a PDF page's own text is worth keeping, and whether the page looks scanned.

Runs in the parser child, on what PDFium reads from untrusted files; standard library only
(the page object is pypdfium2's, handed in). ``ocr.read_pdf_page`` asks it before OCRing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

# What makes a text layer not worth keeping (``text_layer_problem``).
_MAX_UNREADABLE_SHARE = 0.1
_MIN_ALNUM_SHARE = 0.5
_MIN_WORD_SHARE = 0.5
_MIN_TOKENS_TO_JUDGE = 10
# A page mostly covered by images with only this little text (a scanner's stamp, a page
# number) is a scan: OCR it, and keep the OCR text if it has clearly more words.
SPARSE_CHARS = 200
SCANNED_COVERAGE = 0.5
# A scan coarser than this is rendered finer for OCR (Tesseract wants capitals a dozen
# pixels high or more).
MIN_SCAN_DPI = 200
# The letters of Latin-script words' syllables, after stripping accents.
_VOWELS = frozenset("aeiouy")


def text_layer_problem(text: str, *, image_coverage: float = 0.0) -> str | None:
    """Why a page's own text is not worth keeping (OCR it instead), or None to keep it.

    - ``empty``: no visible character;
    - ``unreadable``: over a tenth replacement, private-use, unassigned or control
      characters (a font without a usable encoding);
    - ``symbols``: under half letters and digits (glyph codes read as punctuation);
    - ``no_words``: of ten or more runs of letters, under half look like words (2 to 24
      letters, one case pattern, a vowel in Latin script): shifted or scrambled encodings;
    - ``sparse``: a page mostly covered by images with little text (a scan with a stamp);
      the caller OCRs it and keeps whichever reads more words (``ocr.prefer_ocr``).
    """
    visible = [char for char in text if not char.isspace()]
    if not visible:
        return "empty"
    unreadable = sum(1 for char in visible if _unreadable(char))
    if unreadable / len(visible) > _MAX_UNREADABLE_SHARE:
        return "unreadable"
    if sum(1 for char in visible if char.isalnum()) / len(visible) < _MIN_ALNUM_SHARE:
        return "symbols"
    tokens = re.findall(r"[^\W\d_]+", text)
    if (
        len(tokens) >= _MIN_TOKENS_TO_JUDGE
        and sum(1 for token in tokens if _word_like(token)) / len(tokens) < _MIN_WORD_SHARE
    ):
        return "no_words"
    if len(visible) < SPARSE_CHARS and image_coverage >= SCANNED_COVERAGE:
        return "sparse"
    return None


def _unreadable(char: str) -> bool:
    return char == "\ufffd" or unicodedata.category(char) in ("Cc", "Co", "Cn", "Cs")


def _word_like(token: str) -> bool:
    if not 2 <= len(token) <= 24:
        return False
    if not (token.islower() or token.isupper() or token.istitle()):
        return False
    if all(ord(char) < 0x250 for char in token):  # Latin script: a syllable has a vowel
        bare = unicodedata.normalize("NFD", token.lower())
        return any(char in _VOWELS for char in bare)
    return True


@dataclass(frozen=True)
class PageImages:
    """What images make of a PDF page: the share of its area they cover (overlaps counted
    twice, capped at 1; near 1 for a scan) and the resolution of the largest (dpi)."""

    coverage: float = 0.0
    dpi: int | None = None

    def render_dpi(self, preferred: int) -> int:
        """The resolution to OCR the page at: a scan's own (at least ``MIN_SCAN_DPI``) when
        it is below ``preferred``, since rendering finer only interpolates (and OCR takes
        half again as long for the same words); else ``preferred``."""
        if self.coverage < SCANNED_COVERAGE or self.dpi is None:
            return preferred
        return min(preferred, max(self.dpi, MIN_SCAN_DPI))


def page_images(page: Any, pdfium: Any) -> PageImages:
    """The images of a PDF page (``PageImages``), from their placement, without decoding."""
    width, height = page.get_size()
    if width <= 0 or height <= 0:
        return PageImages()
    covered = largest = 0.0
    dpi: int | None = None
    for image in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=4):
        left, bottom, right, top = image.get_bounds()
        area = max(0.0, min(right, width) - max(left, 0.0)) * max(
            0.0, min(top, height) - max(bottom, 0.0)
        )
        covered += area
        if area > largest and right > left:
            largest = area
            pixels_wide = image.get_px_size()[0]
            dpi = round(pixels_wide / ((right - left) / 72)) if pixels_wide > 0 else None
    return PageImages(coverage=min(1.0, covered / (width * height)), dpi=dpi)
