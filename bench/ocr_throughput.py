"""Scenario "ocr.throughput": scanned pages OCRed per second through the extract activity vs
the ``tesseract`` command run directly on the same page images.

Project: ``ArtifactActivities.extract_content`` (the real activity, run by temporalio's
``ActivityEnvironment``) on an image-only PDF in the real local blob store: the parser's
child finds no text layer, renders each page (greyscale, PDFium, at the scan's own 200 dpi:
``text_layer.PageImages.render_dpi``) and OCRs it
(Tesseract through tesserocr, the model loaded once per child), and the writer stores the
text, Markdown, chunks and page facts. Baseline: Debian's ``tesseract`` command, once per
page, on the very images the child OCRs (the same pages rendered the same way, written as
PNG files beforehand, untimed), one page after another with ``OMP_THREAD_LIMIT=1``: like
the child, one thread on one page at a time (its OpenMP threads, when let loose on this
shared two-core machine, made it five times slower, which would flatter the ratio).

The scan is made of real prose typeset by ``tests.corpus.prose_pdf`` (the licence texts
every Debian system carries), rendered at 200 dpi greyscale, as a scanner would file it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import uuid
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from application.ports import BlobStore
from bench.pdf_throughput import Timing, store_blob, timed
from bench.report import Result, result
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.di.container import processing_options
from infrastructure.processing.ocr import OcrOptions, check_languages, render_page
from infrastructure.processing.text_layer import page_images
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import Extraction
from tests import corpus
from tests.fakes import FakeSummarizer, in_memory_artifacts

PAGES = 30
QUICK_PAGES = 6
SCAN_DPI = 200


def scan_pdf(root: Path, pages: int) -> Path:
    """An image-only PDF of ``pages`` pages of real prose, scanned at 200 dpi greyscale."""
    root.mkdir(parents=True, exist_ok=True)
    originals = [
        corpus.prose_pdf(root, (corpus.COMMON_LICENSES / name).read_text(), name=f"{name}.pdf")
        for name in ("GPL-3", "Apache-2.0", "MPL-2.0")
    ]
    images = [
        image for original in originals for image in corpus.pdf_page_images(original, dpi=SCAN_DPI)
    ]
    # Pages repeat when the texts run out: every page is a different image until then.
    chosen = [images[index % len(images)] for index in range(pages)]
    path = root / f"scan-{pages}p.pdf"
    chosen[0].save(path, save_all=True, append_images=chosen[1:], resolution=SCAN_DPI)
    return path


def ocr_inputs(pdf: Path, directory: Path, options: OcrOptions) -> list[Path]:
    """The scan's pages as the parser child hands them to Tesseract, as PNG files."""
    import pypdfium2 as pdfium  # type: ignore[import-untyped]
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    document = pdfium.PdfDocument(str(pdf))
    try:
        for index in range(len(document)):
            page = document[index]
            dpi = page_images(page, pdfium).render_dpi(options.dpi)
            pixels, width, height, dpi = render_page(page, options, dpi=dpi)
            path = directory / f"page-{index + 1:03d}.png"
            Image.frombytes("L", (width, height), pixels).save(path, dpi=(dpi, dpi))
            paths.append(path)
    finally:
        document.close()
    return paths


async def run(root: Path, *, quick: bool, rounds: int) -> Result:
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        raise RuntimeError("no tesseract command, the baseline: run `make install-tesseract`")
    pages = QUICK_PAGES if quick else PAGES
    settings = Settings(data_dir=root / "ocr-throughput")
    options = processing_options(settings)
    blob_store = LocalBlobStore(settings.blob_dir)
    activities = ArtifactActivities(in_memory_artifacts(), blob_store, FakeSummarizer(), options)
    pdf = await asyncio.to_thread(scan_pdf, root / "ocr-scan", pages)
    images = await asyncio.to_thread(ocr_inputs, pdf, root / "ocr-pages", options.ocr)
    job = _job(blob_store, pdf)
    tessdata = check_languages(options.ocr.languages)
    measured, cpu_ratios = [], []
    for _ in range(rounds):
        project = await asyncio.to_thread(through_activity, activities, job, pages)
        baseline = await asyncio.to_thread(
            tesseract_cli, tesseract, images, options.ocr.languages, tessdata
        )
        measured.append((pages / project.wall, pages / baseline.wall))
        cpu_ratios.append(baseline.cpu / project.cpu)
    return result(
        "ocr.throughput",
        "pages/s",
        measured,
        target=0.9,
        note=f"a {pages}-page image-only PDF of prose scanned at {SCAN_DPI} dpi; the extract "
        f"activity (ActivityEnvironment: render, OCR, write) vs the tesseract command per "
        f"page on the same images "
        f"(OMP_THREAD_LIMIT=1, as the child runs one thread); per CPU second the ratio is "
        f"{statistics.median(cpu_ratios):.2f}; machine shared with other work",
    )


def _job(blob_store: BlobStore, pdf: Path) -> Extraction:
    return Extraction(
        artifact_id=uuid.uuid4(),
        storage_location=store_blob(blob_store, pdf),
        mime_type="application/pdf",
        kind="pdf",
    )


def through_activity(activities: ArtifactActivities, job: Extraction, pages: int) -> Timing:
    with timed() as timing:
        facts = ActivityEnvironment().run(activities.extract_content, job)
    if facts.page_count != pages or facts.char_count < pages * 500:
        raise RuntimeError(f"the activity did not OCR the scan: {facts}")
    return timing[0]


def tesseract_cli(tesseract: str, images: list[Path], languages: str, tessdata: Path) -> Timing:
    """``tesseract IMAGE stdout`` for each page image, one after another."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "TESSDATA_PREFIX": str(tessdata)}
    chars = 0
    with timed() as timing:
        for image in images:
            done = subprocess.run(
                [tesseract, str(image), "stdout", "-l", languages, "--oem", "1", "--psm", "3"],
                capture_output=True,
                env=env,
                check=True,
            )
            chars += len(done.stdout)
    if chars < len(images) * 500:
        raise RuntimeError("the tesseract command read almost nothing")
    return timing[0]
