"""Scenario "pdf.throughput": pages per second through the extract activity vs PDFium alone.

Project: ``ArtifactActivities.extract_content`` (the real activity, run by temporalio's
``ActivityEnvironment``) on a blob in the real local blob store: a copy of the blob to a
scratch file, the parser's child process under its limits, the text of each page batch
sent back as JSON, stored as a text blob and heartbeated. Baseline: pypdfium2 called in a
loop in this process on the same file (open, then each page's text), nothing stored. The
PDF is ``PAGES`` pages of full text (50 lines of 12 words each), made with reportlab.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from application.ports import BlobStore
from bench.report import Result, result
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.di.container import processing_options
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import Extraction
from tests.fakes import FakeSummarizer, in_memory_artifacts

PAGES = 500
LINES_PER_PAGE = 50
WORDS = (
    *("artifact", "processing", "durable", "workflow", "event", "store", "upload", "extract"),
    *("summary", "page", "text", "temporal", "worker", "activity", "heartbeat", "retry"),
    *("parser", "child", "process", "memory", "blob", "café", "Köln"),
)


def text_pdf(path: Path, pages: int = PAGES) -> Path:
    """A PDF of ``pages`` pages, each full of (reproducibly random) words."""
    from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

    rng = random.Random(6)  # noqa: S311 - the same filler text every run, not a secret
    canvas = Canvas(str(path))
    for _ in range(pages):
        text = canvas.beginText(72, 740)
        text.setFont("Helvetica", 10)
        for _ in range(LINES_PER_PAGE):
            text.textLine(" ".join(rng.choice(WORDS) for _ in range(12)))
        canvas.drawText(text)
        canvas.showPage()
    canvas.save()
    return path


def store_blob(blob_store: BlobStore, path: Path) -> str:
    """Puts the file into the blob store; returns its location."""
    writer = blob_store.writer()
    try:
        with path.open("rb") as source:
            while chunk := source.read(1024 * 1024):
                writer.write(chunk)
        return writer.commit().location
    finally:
        writer.abort()


async def run(root: Path, pdf: Path, *, rounds: int) -> Result:
    settings = Settings(data_dir=root / "pdf-throughput")
    blob_store = LocalBlobStore(settings.blob_dir)
    # extract_content touches only the blob store: the application and the summarizer
    # are the tests' in-memory ones.
    activities = ArtifactActivities(
        in_memory_artifacts(), blob_store, FakeSummarizer(), processing_options(settings)
    )
    job = Extraction(
        artifact_id=uuid.uuid4(),
        storage_location=store_blob(blob_store, pdf),
        mime_type="application/pdf",
        kind="pdf",
    )
    measured = []
    for _ in range(rounds):
        project = await asyncio.to_thread(_through_activity, activities, job)
        baseline = await asyncio.to_thread(parse_directly, pdf)
        measured.append((project, baseline))
    return result(
        "pdf.throughput",
        "pages/s",
        measured,
        target=0.8,
        note=f"{PAGES} pages of text; the extract activity (ActivityEnvironment) vs "
        f"pypdfium2 in a loop in process; no event store involved",
    )


def _through_activity(activities: ArtifactActivities, job: Extraction) -> float:
    started = time.perf_counter()
    facts = ActivityEnvironment().run(activities.extract_content, job)
    elapsed = time.perf_counter() - started
    if facts.page_count != PAGES:
        raise RuntimeError(f"the activity extracted {facts.page_count} pages, not {PAGES}")
    return PAGES / elapsed


def parse_directly(pdf: Path) -> float:
    """Pages per second of PDFium's text extraction alone."""
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    started = time.perf_counter()
    document = pdfium.PdfDocument(str(pdf))
    chars = 0
    try:
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            chars += len(textpage.get_text_range())
            textpage.close()
            page.close()
    finally:
        document.close()
    elapsed = time.perf_counter() - started
    if not chars:
        raise RuntimeError("PDFium found no text")
    return PAGES / elapsed
