"""Whether a PDF page's own text is worth keeping, and whether the page looks scanned.

Runs in the parser child, on what PDFium reads from untrusted files; standard library only
(the page object is pypdfium2's, handed in). ``ocr.read_pdf_page`` asks it before OCRing.
"""

from __future__ import annotations

import functools
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

    A long page is judged on a sample of its words (``_sample``), and first on a smaller
    one that settles it when it reads clearly well: every page of a document is asked, so
    this must cost little beside PDFium's own reading of the page.
    """
    if not text or text.isspace():
        return "empty"
    if len(text) <= _GLANCE_CHARS or not _reads_well(_sample(text, _GLANCE_CHARS)):
        sample = _sample(text, _SAMPLE_CHARS)
        if not _visible(sample):  # the sample fell on blank stretches only
            sample = text
        if problem := _problem(sample):
            return problem
    if image_coverage >= SCANNED_COVERAGE and _visible(text) < SPARSE_CHARS:
        return "sparse"
    return None


def _problem(sample: str) -> str | None:
    """What ``text_layer_problem`` finds wrong with a sample that has visible characters."""
    visible = _visible(sample)
    if _unreadable_count(sample) / visible > _MAX_UNREADABLE_SHARE:
        return "unreadable"
    if _alnum_count(sample, visible) / visible < _MIN_ALNUM_SHARE:
        return "symbols"
    runs = _LETTER_RUN.findall(sample)
    if (
        len(runs) >= _MIN_TOKENS_TO_JUDGE
        and sum(map(_word_like, runs)) / len(runs) < _MIN_WORD_SHARE
    ):
        return "no_words"
    return None


def _reads_well(sample: str) -> bool:
    """Whether a small sample is clearly good text: no unreadable character, mostly
    letters and digits, and enough runs of letters, nearly all words."""
    visible = _visible(sample)
    if not visible or _unreadable_count(sample):
        return False
    if _alnum_count(sample, visible) / visible < _GLANCE_ALNUM_SHARE:
        return False
    runs = _LETTER_RUN.findall(sample)
    return (
        len(runs) >= _MIN_TOKENS_TO_JUDGE
        and sum(map(_word_like, runs)) / len(runs) >= _GLANCE_WORD_SHARE
    )


def _visible(text: str) -> int:
    return sum(map(len, text.split()))


def _alnum_count(sample: str, visible: int) -> int:
    return visible - len(_VISIBLE_NOT_ALNUM.findall(sample))


# A visible character that is not a letter or digit (``str.isalnum``): ``\w`` and ``\s``
# are ``str.isalnum`` (and "_") and ``str.isspace``.
_VISIBLE_NOT_ALNUM = re.compile(r"[^\w\s]|_")
# A character outside whitespace, printable ASCII and the Latin letters: one that may be
# a control, private-use, unassigned or surrogate character (``_unreadable``).
_SUSPECT = re.compile(r"[^\t-\r -~\u00a0-\u024f]")
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_SPACE = re.compile(r"\s")
# A page longer than this is judged on three stretches of a third of it each (start,
# middle, end): a font without a usable encoding garbles every line, not a few. A glance
# at a third of that settles it when the text reads clearly well.
_SAMPLE_CHARS = 600
_GLANCE_CHARS = 180
_GLANCE_ALNUM_SHARE = 0.65
_GLANCE_WORD_SHARE = 0.75


def _sample(text: str, chars: int) -> str:
    """Three stretches of ``text`` (start, middle, end), of whole words, ``chars`` in all
    at most, or all of it."""
    if len(text) <= chars:
        return text
    size = chars // 3
    pieces = []
    for start in (0, (len(text) - size) // 2, len(text) - size):
        piece = text[start : start + size]
        # Drop what a cut left of a word at either end.
        if start > 0 and (space := _SPACE.search(piece)):
            piece = piece[space.end() :]
        if start + size < len(text) and (end := max(map(piece.rfind, " \n\t"))) > 0:
            piece = piece[:end]
        pieces.append(piece)
    return "\n".join(pieces)


def _unreadable_count(sample: str) -> int:
    suspects = "".join(_SUSPECT.findall(sample))
    return sum(suspects.count(char) for char in set(suspects) if _unreadable(char))


def _unreadable(char: str) -> bool:
    return char == "\ufffd" or (
        not char.isspace() and unicodedata.category(char) in ("Cc", "Co", "Cn", "Cs")
    )


# Words repeat: a page's runs of letters are judged once each (bounded: a hostile page
# can make every run new).
@functools.lru_cache(maxsize=1 << 14)
def _word_like(token: str) -> bool:
    if not 2 <= len(token) <= 24:
        return False
    if not (token.islower() or token.isupper() or token.istitle()):
        return False
    if max(token) < "\u0250":  # Latin script: a syllable has a vowel
        return not _VOWELS.isdisjoint(unicodedata.normalize("NFD", token.lower()))
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
