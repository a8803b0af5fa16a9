"""OCR with Tesseract, in the parser child: when a page needs it, and what it reads there.

The engine is libtesseract through tesserocr (its wheel bundles libtesseract 5.5 and reads
Debian's language packs, ``tesseract-ocr-<lang>``), not the ``tesseract`` command per page:
loading a language model costs a tenth of a second and some 30 MB, and the command pays it
for every page, while a process here loads it once (``load_engine``; a warm parent that
forks the parser children can load it once for all of them). Pages go to it as raw 8-bit
greyscale pixels, so nothing is encoded on the way.

Everything here runs in the resource-limited child (``limits.run_limited``), on pixels of
untrusted files: the renderer (PDFium), the decoder (Pillow) and Tesseract are native code.
Their bounds are:

- pixels: a page is rendered, and an image frame scaled, to at most ``max_pixels``;
- time: Tesseract's own deadline per page (``page_timeout_seconds``): a page that takes
  longer keeps the words read by then and is reported as timed out, and the document goes
  on; a child stops itself before its CPU or wall-clock limit could cut a page short
  (``Budget``), and the parent starts the next one where it stopped.

Child side only: the parent imports ``OcrOptions`` and the budget helpers, which load
nothing native.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from infrastructure.processing.limits import Json
from infrastructure.processing.text_layer import (
    SPARSE_CHARS,
    PageImages,
    page_images,
    text_layer_problem,
)

if TYPE_CHECKING:
    from PIL.Image import Image

OcrMode = Literal["auto", "off", "force"]
OCR_MODES: tuple[OcrMode, ...] = ("auto", "off", "force")
# Where Debian's packages put the language data (tesseract-ocr-eng: .../5/tessdata/eng.traineddata).
DEBIAN_TESSDATA = Path("/usr/share/tesseract-ocr")
# A language code of a Tesseract model file: eng, chi_sim, deu_latf, script/Latin...
_LANGUAGE = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)?$")

# A page read with a mean word confidence under this may be turned (``recognise``), and is
# turned upright when orientation detection is at least this sure (Tesseract's scale).
_LOW_CONFIDENCE = 50
_SURE_ORIENTATION = 2.0


@dataclass(frozen=True)
class OcrOptions:
    """How pages are OCRed (from settings); travels to the child as JSON."""

    mode: OcrMode = "auto"
    # Tesseract's form: "eng", "eng+deu".
    languages: str = "eng"
    # Rendering resolution of PDF pages: Tesseract reads body text best at about 300 dpi.
    dpi: int = 300
    # Largest image OCR is given (a page rendered at a lower resolution, a frame scaled):
    # about 14 A4 pages at 300 dpi; Tesseract's working memory is a few times this.
    max_pixels: int = 40_000_000
    # Tesseract's deadline for one page; a page past it keeps what was read by then.
    page_timeout_seconds: float = 20.0
    # An OCR child reports at least this often, so progress (and heartbeats with it) never
    # waits on a long batch of slow pages.
    batch_seconds: float = 10.0
    # None: Debian's location (``find_tessdata``).
    tessdata: str | None = None

    def to_json(self) -> dict[str, Json]:
        return dict(asdict(self))

    @classmethod
    def from_json(cls, value: Json) -> OcrOptions:
        if not isinstance(value, dict):
            raise TypeError(f"OCR options must be an object, not {type(value).__name__}")
        return cls(**value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class OcrPage:
    """What OCR read on one page: paragraphs (lines joined by newlines), in reading order.

    ``confidence`` is the mean confidence of the words kept (0-100), None when none was.
    """

    paragraphs: list[str]
    confidence: float | None
    timed_out: bool = False


class OcrUnavailable(RuntimeError):  # noqa: N818 - says what is wrong
    """Tesseract or a language the settings name is not installed."""


def find_tessdata(configured: str | None = None) -> Path:
    """The tessdata directory: ``configured``, else ``TESSDATA_PREFIX``, else Debian's."""
    if configured:
        return Path(configured)
    if prefix := os.environ.get("TESSDATA_PREFIX"):
        return Path(prefix)
    candidates = sorted(DEBIAN_TESSDATA.glob("*/tessdata"), reverse=True)
    if not candidates:
        raise OcrUnavailable(
            f"no Tesseract language data under {DEBIAN_TESSDATA}: run `make install-tesseract` "
            "(Debian: apt-get install tesseract-ocr tesseract-ocr-eng)"
        )
    return candidates[0]


def check_languages(languages: str, tessdata: str | None = None) -> Path:
    """The tessdata directory, once every language of ``languages`` is found in it; raises
    ``OcrUnavailable`` naming the Debian packages to install otherwise."""
    directory = find_tessdata(tessdata)
    codes = [code.lstrip("~") for code in languages.split("+")]
    if not codes or not all(_LANGUAGE.match(code) for code in codes):
        raise OcrUnavailable(f"OCR_LANGUAGES={languages!r} is not of the form eng or eng+deu")
    missing = [code for code in codes if not (directory / f"{code}.traineddata").is_file()]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in missing)
        raise OcrUnavailable(
            f"OCR language data missing in {directory}: {', '.join(missing)}; install it with "
            f"`make install-tesseract OCR_LANGUAGES={languages}` (Debian: {packages})"
        )
    return directory


_engine: Any = None
_engine_key: tuple[str, str] | None = None


def load_engine(languages: str = "eng", tessdata: str | None = None) -> Any:
    """Loads Tesseract with ``languages`` once per process and returns it (a later call with
    the same languages and data directory returns the same engine).

    A process that forks parser children can call this before forking, so that every child
    starts with the model loaded: ``infrastructure.processing.ocr:load_engine`` with the
    worker's ``OCR_LANGUAGES`` (the default, ``eng``, when called without arguments).
    """
    global _engine, _engine_key
    directory = str(find_tessdata(tessdata))
    if _engine is not None and _engine_key == (languages, directory):
        return _engine
    check_languages(languages, directory)
    import tesserocr  # type: ignore[import-untyped]

    # Leptonica's complaints about odd images go to stderr, the worker's log.
    tesserocr.set_leptonica_log_level(tesserocr.LeptLogLevel.NONE)
    if _engine is not None:
        _engine.End()
    _engine = tesserocr.PyTessBaseAPI(
        path=directory.rstrip("/") + "/",
        lang=languages,
        oem=tesserocr.OEM.LSTM_ONLY,
        psm=tesserocr.PSM.AUTO,
    )
    _engine_key = (languages, directory)
    return _engine


def recognise(pixels: bytes, width: int, height: int, *, dpi: int, options: OcrOptions) -> OcrPage:
    """OCRs an 8-bit greyscale image (``width`` x ``height``, one byte a pixel, no padding).

    A page read with low confidence may lie on its side or upside down (a sheet fed the
    wrong way): Tesseract's orientation detection is asked, and the page read again turned
    upright, within what is left of the page's deadline; the better reading is kept.
    """
    deadline = time.monotonic() + options.page_timeout_seconds
    page = _read(
        pixels, width, height, dpi=dpi, options=options, seconds=options.page_timeout_seconds
    )
    if page.confidence is None or page.confidence >= _LOW_CONFIDENCE or page.timed_out:
        return page
    turned = _upright(pixels, width, height, options)
    left = deadline - time.monotonic()
    if turned is None or left <= 0:
        return page
    again = _read(*turned, dpi=dpi, options=options, seconds=left)
    if again.confidence is not None and again.confidence > page.confidence:
        return again
    return page


def _read(
    pixels: bytes, width: int, height: int, *, dpi: int, options: OcrOptions, seconds: float
) -> OcrPage:
    from tesserocr import RIL

    engine = load_engine(options.languages, options.tessdata)
    # Tesseract reads the buffer without copying it: ``pixels`` outlives the recognition.
    engine.SetImageBytes(pixels, width, height, 1, width)
    engine.SetSourceResolution(dpi)
    finished = engine.Recognize(timeout=max(1, int(seconds * 1000)))
    paragraphs: list[str] = []
    confidences: list[float] = []
    lines: list[list[str]] = []
    iterator = engine.GetIterator()
    if iterator is not None:
        iterator.Begin()
        while True:
            word = _word(iterator, RIL.WORD)
            if word:
                if iterator.IsAtBeginningOf(RIL.PARA) and lines:
                    paragraphs.append(_joined(lines))
                    lines = []
                if iterator.IsAtBeginningOf(RIL.TEXTLINE) or not lines:
                    lines.append([])
                lines[-1].append(word)
                confidences.append(float(iterator.Confidence(RIL.WORD)))
            if not iterator.Next(RIL.WORD):
                break
    if lines:
        paragraphs.append(_joined(lines))
    engine.Clear()
    if not any(char.isalnum() for paragraph in paragraphs for char in paragraph):
        # Specks read as punctuation: nothing legible.
        return OcrPage(paragraphs=[], confidence=None, timed_out=not finished)
    confidence = round(min(100.0, max(0.0, sum(confidences) / len(confidences))), 1)
    return OcrPage(paragraphs=paragraphs, confidence=confidence, timed_out=not finished)


_osd: Any = None
_osd_directory: str | None = None


def load_orientation(tessdata: str | None = None) -> Any:
    """Loads Tesseract's orientation detection (the ``osd`` data) once per process and
    returns it, or None when the data cannot be had here (the page is then read as it lies).

    Only pages read with low confidence need it, so a child loads it on first need; a
    parent that forks children into a sandbox hiding the data directory preloads it:
    ``infrastructure.processing.ocr:load_orientation`` (about 30 MB, shared by the forks).
    """
    global _osd, _osd_directory
    directory = find_tessdata(tessdata)
    if _osd is not None and _osd_directory == str(directory):
        return _osd
    import tesserocr

    try:
        if not (directory / "osd.traineddata").is_file():
            return None
        engine = tesserocr.PyTessBaseAPI(
            path=str(directory).rstrip("/") + "/", lang="osd", psm=tesserocr.PSM.OSD_ONLY
        )
    except (OSError, RuntimeError):  # not installed, or not readable from here
        return None
    _osd, _osd_directory = engine, str(directory)
    return engine


def _upright(
    pixels: bytes, width: int, height: int, options: OcrOptions
) -> tuple[bytes, int, int] | None:
    """The page turned upright when Tesseract's orientation detection (``osd`` data) is
    sure it is not; else None."""
    from PIL import Image

    osd = load_orientation(options.tessdata)
    if osd is None:
        return None
    osd.SetImageBytes(pixels, width, height, 1, width)
    try:
        found = osd.DetectOrientationScript()
    except RuntimeError:  # too little text to tell
        return None
    finally:
        osd.Clear()
    degrees = int(found.get("orient_deg") or 0) if found else 0
    if degrees not in (90, 180, 270) or float(found.get("orient_conf") or 0) < _SURE_ORIENTATION:
        return None
    # Tesseract names the clockwise turn that makes it upright; Pillow turns anticlockwise.
    turned = Image.frombytes("L", (width, height), pixels).rotate(degrees, expand=True)
    return turned.tobytes(), turned.width, turned.height


def recognise_image(image: Image, *, dpi: int, options: OcrOptions) -> OcrPage:
    """OCRs a Pillow image, as 8-bit greyscale scaled to at most ``options.max_pixels``."""
    scale = fit_scale(image.width, image.height, options.max_pixels)
    if scale < 1:
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
        dpi = max(1, int(dpi * scale))
    if image.mode != "L":
        image = image.convert("L")
    return recognise(image.tobytes(), image.width, image.height, dpi=dpi, options=options)


def fit_scale(width: float, height: float, max_pixels: int) -> float:
    """The largest scale (at most 1) that brings ``width`` x ``height`` within ``max_pixels``."""
    area = width * height
    return 1.0 if area <= max_pixels else (max_pixels / area) ** 0.5


def render_page(
    page: Any, options: OcrOptions, *, dpi: int | None = None
) -> tuple[bytes, int, int, int]:
    """A PDF page (pypdfium2) as greyscale pixels at ``dpi`` (default ``options.dpi``), or
    lower where the page is too large for ``options.max_pixels``: (pixels, width, height,
    dpi)."""
    dpi = dpi or options.dpi
    width, height = page.get_size()
    scale = dpi / 72 * fit_scale(width * dpi / 72, height * dpi / 72, options.max_pixels)
    bitmap = page.render(scale=scale, grayscale=True, draw_annots=False)
    try:
        image = bitmap.to_pil()
        if image.mode != "L":
            image = image.convert("L")
        return image.tobytes(), image.width, image.height, max(1, round(scale * 72))
    finally:
        bitmap.close()


def prefer_ocr(text: str, ocr: OcrPage) -> bool:
    """Whether OCR read clearly more words than a sparse text layer holds."""
    ocr_words = sum(len(paragraph.split()) for paragraph in ocr.paragraphs)
    return ocr_words > 2 * len(text.split())


def _word(iterator: Any, level: Any) -> str:
    try:
        return str(iterator.GetUTF8Text(level) or "").strip()
    except RuntimeError:  # tesserocr's "No text returned": an empty page or element
        return ""


def _joined(lines: list[list[str]]) -> str:
    return "\n".join(" ".join(words) for words in lines)


@dataclass
class Budget:
    """What is left of a child's CPU and wall-clock limits.

    A child that OCRs asks ``allows(seconds)`` before each page and stops (to be followed
    by a fresh child from that page) rather than be killed by its limits mid-page: a
    long scan takes several children, each within the limits a hostile file gets.
    """

    cpu_seconds: float
    wall_seconds: float
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.started or time.monotonic()

    def allows(self, seconds: float) -> bool:
        # process_time counts this process's CPU since it started, as RLIMIT_CPU does.
        return (
            time.process_time() + seconds < self.cpu_seconds
            and time.monotonic() - self.started + seconds < self.wall_seconds
        )


def page_allowance(options: OcrOptions) -> float:
    """The time one page may take in the worst case: Tesseract's deadline, plus rendering
    and layout analysis (which the deadline does not cover)."""
    return options.page_timeout_seconds * 1.25 + 2.0


def page_and_paragraphs(
    number: int, source: str, confidence: float | None, paragraphs: list[str]
) -> list[Json]:
    """The ``page`` block of page ``number`` and a ``paragraph`` block for each paragraph."""
    blocks: list[Json] = [
        {"type": "page", "number": number, "source": source, "confidence": confidence}
    ]
    blocks.extend({"type": "paragraph", "text": paragraph} for paragraph in paragraphs)
    return blocks


@dataclass(frozen=True)
class PageRead:
    """Where a PDF page's content comes from: ``source`` "text" (the caller splits its text
    layer into paragraphs: ``paragraphs`` is None), "ocr" (``paragraphs`` OCR read), or
    "none" (nothing legible)."""

    source: str
    confidence: float | None = None
    paragraphs: list[str] | None = None
    timed_out: bool = False
    # Whether the page was rendered and OCRed (it took seconds, not milliseconds).
    ocred: bool = False


def read_pdf_page(
    pdfium: Any, page: Any, text: str, options: OcrOptions, *, ocr_allowed: bool = True
) -> PageRead | None:
    """Decides, in the child, how a PDF page's content is had: its own text layer when it
    is good (``text_layer_problem``), else OCR of the page rendered (``mode`` "auto");
    always OCR ("force"); never ("off"). None when the page needs OCR and ``ocr_allowed``
    is false (the child's limits would not see it through)."""
    has_text = bool(text.strip())
    width, height = page.get_size()
    if options.mode == "off" or width < 1 or height < 1:
        return PageRead(source="text" if has_text else "none")
    problem: str | None = "forced"
    # Only a page short of text can be a scan: a page full of text is not looked into.
    images = page_images(page, pdfium) if len(text) < SPARSE_CHARS * 2 else PageImages()
    if options.mode == "auto":
        problem = text_layer_problem(text, image_coverage=images.coverage)
        if problem is None:
            return PageRead(source="text")
    if not ocr_allowed:
        return None
    pixels, width, height, dpi = render_page(page, options, dpi=images.render_dpi(options.dpi))
    ocr = recognise(pixels, width, height, dpi=dpi, options=options)
    del pixels
    if problem == "sparse" and not prefer_ocr(text, ocr):
        return PageRead(source="text", timed_out=ocr.timed_out, ocred=True)
    if not ocr.paragraphs:
        return PageRead(source="none", timed_out=ocr.timed_out, ocred=True)
    return PageRead(
        source="ocr",
        confidence=ocr.confidence,
        paragraphs=ocr.paragraphs,
        timed_out=ocr.timed_out,
        ocred=True,
    )
