"""Scans and images through the extract activity: what OCR reads becomes the document.

The real activity (``ActivityEnvironment``), the real parser children, real Tesseract. The
pages are images of text made here: born-digital PDFs rendered at 200 dpi greyscale and
saved as image-only PDFs or multi-page TIFFs, as a scanner files them.
"""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest

from infrastructure.processing.limits import ProcessLimits
from infrastructure.processing.ocr import OcrOptions
from infrastructure.processing.options import ProcessingOptions
from infrastructure.processing.pdf import PdfLimits, PdfProgress
from tests import corpus
from tests.support import ExtractionRun, WorkerLost

PDF = ("application/pdf", "pdf")
TIFF = ("image/tiff", "image")


@pytest.fixture
def letter(tmp_path: Path) -> Path:
    """A born-digital three-page letter of real prose (a licence text every Debian has)."""
    text = (corpus.COMMON_LICENSES / "Apache-2.0").read_text()
    return corpus.prose_pdf(tmp_path, text, name="letter.pdf")


def layer_text(pdf: Path, page: int) -> str:
    with pdfium.PdfDocument(str(pdf)) as document:
        return str(document[page].get_textpage().get_text_range())


def words(text: str) -> list[str]:
    return "".join(char if char.isalnum() else " " for char in text.lower()).split()


def test_a_scanned_pdf_is_read_by_ocr_page_by_page(letter: Path, tmp_path: Path) -> None:
    scan = corpus.scanned_pdf(tmp_path, letter, pages=[0, 1])
    run = ExtractionRun()

    facts = run.extract(scan.read_bytes(), *PDF)

    pages = run.pages(facts)
    assert [(page["number"], page["source"]) for page in pages] == [(1, "ocr"), (2, "ocr")]
    assert all(page["confidence"] > 80 for page in pages)
    text = run.text(facts)
    assert "Apache License" in text
    assert text.count("\f") == 2
    assert facts.page_count == 2
    assert facts.language == "en"
    assert facts.warnings == []
    assert "<!-- page 2 -->" in run.markdown(facts)


def test_a_pdf_of_text_and_scanned_pages_keeps_the_text_and_ocrs_the_scans(
    letter: Path, tmp_path: Path
) -> None:
    scan = corpus.scanned_pdf(tmp_path, letter, pages=[1])
    mixed = pdfium.PdfDocument.new()
    with pdfium.PdfDocument(str(letter)) as born_digital, pdfium.PdfDocument(str(scan)) as scanned:
        mixed.import_pages(born_digital, [0])
        mixed.import_pages(scanned, [0])
        mixed.import_pages(born_digital, [2])
        mixed.save(str(tmp_path / "mixed.pdf"))
    mixed.close()
    run = ExtractionRun()

    facts = run.extract((tmp_path / "mixed.pdf").read_bytes(), *PDF)

    pages = run.pages(facts)
    assert [page["source"] for page in pages] == ["text", "ocr", "text"]
    assert [page["confidence"] is None for page in pages] == [True, False, True]
    read = run.text(facts).split("\f")
    # The scanned page reads as its born-digital original, all but a word or two.
    original = words(layer_text(letter, 1))
    assert len(set(original) - set(words(read[1]))) <= 2


def test_each_page_of_a_multipage_tiff_is_a_page_of_the_document(
    letter: Path, tmp_path: Path
) -> None:
    images = corpus.pdf_page_images(letter)
    run = ExtractionRun()

    facts = run.extract(corpus.multipage_tiff(tmp_path, images).read_bytes(), *TIFF)

    assert facts.details == {
        "width": images[0].width,
        "height": images[0].height,
        "format": "TIFF",
        "mode": "L",
        "frames": 3,
    }
    assert facts.page_count == 3
    assert [page["source"] for page in run.pages(facts)] == ["ocr"] * 3
    assert "Apache License" in run.text(facts).split("\f")[0]
    assert facts.warnings == []


@pytest.mark.parametrize("noise", [False, True], ids=["blank", "noise"])
def test_a_scan_with_nothing_legible_is_processed_with_the_no_text_warning(
    tmp_path: Path, noise: bool
) -> None:
    run = ExtractionRun()

    facts = run.extract(corpus.blank_scan_pdf(tmp_path, noise=noise).read_bytes(), *PDF)

    assert (facts.page_count, facts.char_count, facts.warnings) == (1, 0, ["no_text"])
    assert run.pages(facts) == [{"number": 1, "source": "none", "confidence": None, "chars": 0}]


def test_with_ocr_off_a_scan_has_no_text(letter: Path, tmp_path: Path) -> None:
    run = ExtractionRun(ProcessingOptions(ocr=OcrOptions(mode="off")))

    facts = run.extract(corpus.scanned_pdf(tmp_path, letter, pages=[0]).read_bytes(), *PDF)

    assert facts.warnings == ["no_text"]
    assert run.pages(facts)[0]["source"] == "none"


def test_a_page_past_its_ocr_deadline_keeps_the_document_and_warns(
    letter: Path, tmp_path: Path
) -> None:
    run = ExtractionRun(ProcessingOptions(ocr=OcrOptions(page_timeout_seconds=0.05)))

    facts = run.extract(corpus.scanned_pdf(tmp_path, letter, pages=[0, 1]).read_bytes(), *PDF)

    assert facts.page_count == 2
    assert "ocr_timeout" in facts.warnings
    assert facts.details["ocr_timed_out_pages"] == "1,2"


def test_a_long_scan_is_read_by_several_children_reporting_each_page(
    letter: Path, tmp_path: Path
) -> None:
    # A page may take 28.25 s (ocr.page_allowance of a 21 s deadline): a child with 28 s of
    # CPU reads one page and stops, and the next child goes on from the next page.
    limits = PdfLimits(process=ProcessLimits(cpu_seconds=28, wall_seconds=60))
    run = ExtractionRun(ProcessingOptions(pdf=limits, ocr=OcrOptions(page_timeout_seconds=21)))

    facts = run.extract(corpus.scanned_pdf(tmp_path, letter).read_bytes(), *PDF)

    assert [page["source"] for page in run.pages(facts)] == ["ocr"] * 3
    progress = [PdfProgress.from_details(beat) for beat in run.heartbeats]
    assert sorted({p.next_page for p in progress if p is not None} - {0}) == [1, 2, 3]


@pytest.mark.parametrize("kind", ["pdf", "tiff"])
def test_a_scan_whose_worker_died_resumes_after_its_last_stored_batch(
    letter: Path, tmp_path: Path, kind: str
) -> None:
    # A batch is stored and heartbeated after every OCRed page (batch_seconds=0).
    run = ExtractionRun(ProcessingOptions(ocr=OcrOptions(batch_seconds=0)))
    if kind == "pdf":
        content, what = corpus.scanned_pdf(tmp_path, letter).read_bytes(), PDF
    else:
        images = corpus.pdf_page_images(letter)
        content, what = corpus.multipage_tiff(tmp_path, images).read_bytes(), TIFF
    whole = run.extract(content, *what)

    with pytest.raises(WorkerLost):
        run.extract(content, *what, lose_worker_at=lambda beat: beat["next_page"] == 2)
    [last] = [beat for beat in run.heartbeats if beat["next_page"] == 2]
    retried = run.extract(content, *what, resume_from=last)

    # Only the third page was read again: the first two came from the stored batches.
    assert sorted({beat["next_page"] for beat in run.heartbeats} - {0}) == [3]
    assert run.text(retried) == run.text(whole)
    assert run.pages(retried) == run.pages(whole)
    assert retried.details == whole.details


def test_heartbeat_details_carry_the_pages_ocr_cut_short() -> None:
    progress = PdfProgress(page_count=9, next_page=4, block_locations=("a",), ocr_timed_out=(2,))

    assert PdfProgress.from_details(progress.to_details()) == progress
    # Details an attempt of the version before OCR heartbeated: nothing was cut short.
    older = {"page_count": 9, "next_page": 4, "block_locations": ["a"]}
    assert PdfProgress.from_details(older) == PdfProgress(9, 4, ("a",))
