"""OCR: when a page's own text is not worth keeping, and what Tesseract reads instead.

These run the real Tesseract (tesserocr and Debian's language data, which `make test`
installs): without it they fail, naming what to install.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from infrastructure.processing.ocr import (
    OcrOptions,
    OcrUnavailable,
    check_languages,
    fit_scale,
    load_engine,
    prefer_ocr,
    read_pdf_page,
    recognise_image,
    render_page,
)
from infrastructure.processing.text_layer import text_layer_problem

PROSE = (
    "Tesseract reads the pages that have no text of their own. The pipeline keeps a good "
    "text layer where a page has one, and records for every page where its text came from."
)


def drawn(lines: list[str], *, size: int = 48, width: int = 2000) -> Image.Image:
    """Black text on a white greyscale page, drawn with Pillow's own font."""
    font = ImageFont.load_default(size=size)
    leading = size * 3 // 2
    image = Image.new("L", (width, 120 + len(lines) * leading), 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((60, 60 + number * leading), line, font=font, fill=0)
    return image


# --- the text layer: kept or not ---------------------------------------------------------


def test_a_page_of_prose_keeps_its_text_layer() -> None:
    assert text_layer_problem(PROSE) is None


def test_text_in_other_languages_and_scripts_is_kept() -> None:
    german = "Die Straße führt über die Brücke nach Köln, wo das Café am Dom öffnet."
    greek = "Μια γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο στην πόλη."  # noqa: RUF001
    japanese = "日本語の文書もそのまま読みます。表や見出しもあります。"

    assert [text_layer_problem(text) for text in (german, greek, japanese)] == [None] * 3


def test_a_table_of_figures_is_kept() -> None:
    table = "\n".join(
        f"{year} 1,{year % 97:03d}.50 2,{year % 89:03d}.75" for year in range(2000, 2030)
    )

    assert text_layer_problem("Revenue by year\n" + table) is None


def test_a_page_without_text_needs_ocr() -> None:
    assert text_layer_problem(" \n\t\f ") == "empty"


def test_glyph_codes_without_characters_need_ocr() -> None:
    # A font without a usable encoding: PDFium hands out private-use and control characters.
    garbage = "".join(chr(0xE000 + (n * 7) % 300) + "\x03" for n in range(80))

    assert text_layer_problem(garbage + " " + PROSE[:40]) == "unreadable"


def test_glyph_codes_read_as_punctuation_need_ocr() -> None:
    assert text_layer_problem("!\"#$ %&'( )*+, -./: ;<=> ?@[\\ ]^_` {|}~ " * 5) == "symbols"


def test_scrambled_letters_need_ocr() -> None:
    # The same prose through a shifted encoding (each letter three places on).
    shifted = "".join(
        chr((ord(char) - 97 + 3) % 26 + 97) if char.islower() else char for char in PROSE
    )
    scrambled = "".join(random.Random(5).choice("bcdfghjklmnpqrstvwxz") for _ in range(300))
    scrambled = " ".join(scrambled[n : n + 6] for n in range(0, 300, 6))

    assert text_layer_problem(scrambled) == "no_words"
    assert text_layer_problem(shifted + " Xq" * 10) == "no_words"


def test_a_long_page_is_judged_on_stretches_of_it() -> None:
    shifted = "".join(
        chr((ord(char) - 97 + 3) % 26 + 97) if char.islower() else char for char in PROSE
    )
    private_use = "".join(chr(0xE000 + (n * 7) % 300) for n in range(40))

    assert text_layer_problem(PROSE * 30) is None
    assert text_layer_problem(shifted * 30) == "no_words"
    # Garbled at the start, the middle and the end: found, whatever the glance sees.
    garbled = "\n".join([private_use, PROSE * 10, private_use, PROSE * 10, private_use])
    assert text_layer_problem(garbled) == "unreadable"


def test_a_scan_with_a_stamp_is_ocred_but_a_short_born_digital_page_is_not() -> None:
    stamp = "Scanned 2024-05-01 page 3"

    assert text_layer_problem(stamp, image_coverage=0.98) == "sparse"
    assert text_layer_problem(stamp, image_coverage=0.1) is None


# --- the engine ---------------------------------------------------------------------------


def test_tesseract_and_its_english_data_are_installed() -> None:
    # Fails, naming the packages, on a machine that lacks them (`make install-tesseract`).
    assert (check_languages("eng") / "eng.traineddata").is_file()


def test_a_language_without_its_data_is_refused_naming_the_package(tmp_path: Path) -> None:
    (tmp_path / "eng.traineddata").write_bytes(b"")

    with pytest.raises(OcrUnavailable, match="tesseract-ocr-chi-sim"):
        check_languages("eng+chi_sim", str(tmp_path))


def test_languages_not_in_tesseracts_form_are_refused() -> None:
    with pytest.raises(OcrUnavailable, match="not of the form"):
        check_languages("eng deu")


def test_the_engine_loads_once_per_process_for_the_same_languages() -> None:
    # As a warm parent preloads it (no arguments) and as a child asks for it (the directory
    # the worker found).
    assert load_engine() is load_engine("eng", str(check_languages("eng")))


def test_ocr_reads_drawn_text_with_its_confidence() -> None:
    page = recognise_image(drawn([PROSE[:60], PROSE[60:120]]), dpi=300, options=OcrOptions())

    text = " ".join(page.paragraphs)
    assert "Tesseract reads the pages" in text
    assert "keeps a good" in text
    assert page.confidence is not None
    assert 80 <= page.confidence <= 100
    assert not page.timed_out


def test_paragraphs_keep_their_lines_and_are_split_at_gaps() -> None:
    image = drawn(["First paragraph, line one", "and its line two", "", "", "Second paragraph"])

    page = recognise_image(image, dpi=300, options=OcrOptions())

    assert page.paragraphs == [
        "First paragraph, line one\nand its line two",
        "Second paragraph",
    ]


@pytest.mark.parametrize("degrees", [90, 180])
def test_a_page_fed_sideways_or_upside_down_is_read_upright(degrees: int) -> None:
    lines = [PROSE[n : n + 60] for n in range(0, len(PROSE), 60)] * 3
    upright = recognise_image(drawn(lines, size=36), dpi=300, options=OcrOptions())

    turned = recognise_image(
        drawn(lines, size=36).rotate(degrees, expand=True), dpi=300, options=OcrOptions()
    )

    assert turned.paragraphs == upright.paragraphs
    assert turned.confidence == upright.confidence


def test_a_blank_page_reads_nothing_and_has_no_confidence() -> None:
    page = recognise_image(Image.new("L", (1700, 2200), 255), dpi=200, options=OcrOptions())

    assert (page.paragraphs, page.confidence) == ([], None)


def test_noise_reads_nothing_legible() -> None:
    rng = random.Random(3)
    noise = Image.frombytes("L", (1200, 1600), rng.randbytes(1200 * 1600))

    assert recognise_image(noise, dpi=200, options=OcrOptions()).paragraphs == []


def test_a_page_past_its_deadline_is_reported_as_timed_out() -> None:
    lines = [PROSE[n : n + 70] for n in range(0, len(PROSE), 70)] * 12
    options = OcrOptions(page_timeout_seconds=0.05)

    page = recognise_image(drawn(lines, size=32), dpi=300, options=options)

    assert page.timed_out


def test_a_large_image_is_scaled_down_to_the_pixel_bound() -> None:
    assert fit_scale(10_000, 10_000, 25_000_000) == pytest.approx(0.5)
    assert fit_scale(100, 100, 25_000_000) == 1

    page = recognise_image(drawn(["Scaled but legible"], size=160, width=5000), dpi=600,
                           options=OcrOptions(max_pixels=1_000_000))  # fmt: skip

    assert page.paragraphs == ["Scaled but legible"]


# --- PDF pages ----------------------------------------------------------------------------


def test_a_poster_sized_page_is_rendered_within_the_pixel_bound() -> None:
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    document = pdfium.PdfDocument.new()
    page = document.new_page(72 * 100, 72 * 100)  # 100 x 100 inches
    options = OcrOptions(max_pixels=4_000_000)

    pixels, width, height, dpi = render_page(page, options)

    assert width * height <= options.max_pixels
    assert len(pixels) == width * height
    assert dpi == 20


def test_a_scanned_pdf_page_is_ocred_and_a_born_digital_one_keeps_its_text(
    tmp_path: Path,
) -> None:
    import pypdfium2 as pdfium

    from tests import corpus

    original = corpus.text_pdf(tmp_path, 1)
    scan = corpus.scanned_pdf(tmp_path, original, dpi=300)
    options = OcrOptions()

    with (
        pdfium.PdfDocument(str(original)) as born_digital,
        pdfium.PdfDocument(str(scan)) as scanned,
    ):
        kept = read_pdf_page(pdfium, born_digital[0], corpus.page_text(1), options)
        read = read_pdf_page(pdfium, scanned[0], "", options)
        off = read_pdf_page(pdfium, scanned[0], "", OcrOptions(mode="off"))
        forced = read_pdf_page(
            pdfium, born_digital[0], corpus.page_text(1), OcrOptions(mode="force")
        )

    assert kept is not None
    assert read is not None
    assert off is not None
    assert forced is not None
    assert (kept.source, kept.ocred) == ("text", False)
    assert read.source == "ocr"
    assert read.ocred
    assert read.confidence is not None
    # English data only: "Köln" may come out as "Koln".
    assert "\n".join(read.paragraphs or []).startswith(corpus.page_text(1)[:-6])
    assert (off.source, off.ocred) == ("none", False)
    assert forced.source == "ocr"
    assert "Page 1 of the corpus." in (forced.paragraphs or [""])[0]


def test_ocr_text_replaces_a_sparse_layer_only_when_it_reads_more() -> None:
    from infrastructure.processing.ocr import OcrPage

    reads_more = OcrPage(paragraphs=[PROSE], confidence=90.0)
    reads_the_stamp = OcrPage(paragraphs=["Scanned 2024-05-01"], confidence=90.0)

    assert prefer_ocr("Scanned 2024-05-01", reads_more)
    assert not prefer_ocr("Scanned 2024-05-01", reads_the_stamp)


# --- settings -----------------------------------------------------------------------------


def test_the_worker_refuses_to_start_without_a_configured_languages_data(tmp_path: Path) -> None:
    from infrastructure.config import Settings
    from infrastructure.di.container import processing_options

    settings = Settings(data_dir=tmp_path, ocr_languages="eng+xqz")

    with pytest.raises(OcrUnavailable, match="tesseract-ocr-xqz"):
        processing_options(settings)
    assert processing_options(Settings(data_dir=tmp_path, ocr="off", ocr_languages="xqz"))


def test_a_page_deadline_the_parser_limits_cannot_hold_is_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from infrastructure.config import Settings

    with pytest.raises(ValidationError, match="OCR_PAGE_TIMEOUT_SECONDS"):
        Settings(data_dir=tmp_path, ocr_page_timeout_seconds=50, pdf_cpu_seconds=60)
    with pytest.raises(ValidationError, match="ocr_languages"):
        Settings(data_dir=tmp_path, ocr_languages="eng deu")
    assert Settings(data_dir=tmp_path, ocr_page_timeout_seconds=50, pdf_cpu_seconds=90,
                    pdf_timeout_seconds=120).ocr_page_timeout_seconds == 50  # fmt: skip


def test_without_orientation_data_a_page_is_read_as_it_lies(tmp_path: Path) -> None:
    from infrastructure.processing.ocr import load_orientation

    (tmp_path / "eng.traineddata").write_bytes(b"")

    assert load_orientation(str(tmp_path)) is None
    assert load_orientation() is load_orientation(str(check_languages("osd")))
