"""Scenario "pdf.throughput": pages per second through the extract activity vs PDFium alone.

Project: ``ArtifactActivities.extract_content`` (the real activity, run by temporalio's
``ActivityEnvironment``) on a blob in the real local blob store: a copy of the blob to a
scratch file, the parser's child process under its limits, the text of each page batch
sent back as JSON, stored as a text blob and heartbeated. Baseline: pypdfium2 called in a
loop in this process on the same file (open, then each page's text), nothing stored. The
PDF is ``PAGES`` pages full of text (``tests.corpus.dense_text_pdf``).
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from application.ports import BlobStore
from bench.report import Result, result
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.di.container import processing_options
from infrastructure.processing.language import detect_language
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import Extraction
from tests import corpus
from tests.fakes import FakeSummarizer, in_memory_artifacts

PAGES = 500


def text_pdf(path: Path, pages: int = PAGES) -> Path:
    """A PDF of ``pages`` pages, each full of text."""
    return corpus.dense_text_pdf(path.parent, pages, name=path.name)


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


@dataclass(frozen=True)
class Timing:
    """Seconds of one extraction: on the clock, and of CPU (this thread and the children)."""

    wall: float
    cpu: float


@contextmanager
def timed() -> Iterator[list[Timing]]:
    """Times the block; the timing is in the yielded list afterwards."""
    timing: list[Timing] = []
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    thread, wall = time.thread_time(), time.perf_counter()
    yield timing
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime
    timing.append(Timing(time.perf_counter() - wall, time.thread_time() - thread + child_cpu))


async def run(root: Path, pdf: Path, *, rounds: int) -> Result:
    settings = Settings(data_dir=root / "pdf-throughput")
    blob_store = LocalBlobStore(settings.blob_dir)
    # extract_content touches only the blob store: the application and the summarizer
    # are the tests' in-memory ones.
    activities = ArtifactActivities(
        in_memory_artifacts(), blob_store, FakeSummarizer(), processing_options(settings)
    )
    job = _job(blob_store, pdf)
    # A worker loads the language model once, at start (ArtifactActivities begins it in the
    # background): wait for it, so that the first round is not timed while it loads.
    await asyncio.to_thread(detect_language, "The worker has loaded its language model.")
    measured, cpu_ratios = [], []
    for _ in range(rounds):
        project = await asyncio.to_thread(through_activity, activities, job, PAGES)
        baseline = await asyncio.to_thread(parse_directly, pdf)
        measured.append((PAGES / project.wall, PAGES / baseline.wall))
        cpu_ratios.append(baseline.cpu / project.cpu)
    # What every document pays before its first page: the child's interpreter and imports.
    one_page = _job(blob_store, text_pdf(root / "one-page.pdf", 1))
    start = statistics.median(
        [(await asyncio.to_thread(through_activity, activities, one_page, 1)).wall for _ in "abc"]
    )
    return result(
        "pdf.throughput",
        "pages/s",
        measured,
        target=0.8,
        note=f"{PAGES} pages of text; the extract activity (ActivityEnvironment) vs "
        f"pypdfium2 in a loop in process; per CPU second (parent thread and parser child) "
        f"the ratio is {statistics.median(cpu_ratios):.2f}; a 1-page PDF through the activity "
        f"takes {start * 1000:.0f} ms (the parser child's start); no event store involved",
    )


def _job(blob_store: BlobStore, pdf: Path) -> Extraction:
    return Extraction(
        artifact_id=uuid.uuid4(),
        storage_location=store_blob(blob_store, pdf),
        mime_type="application/pdf",
        kind="pdf",
    )


def through_activity(activities: ArtifactActivities, job: Extraction, pages: int) -> Timing:
    """The extract activity on ``job``, a PDF of ``pages`` pages."""
    with timed() as timing:
        facts = ActivityEnvironment().run(activities.extract_content, job)
    if facts.page_count != pages:
        raise RuntimeError(f"the activity extracted {facts.page_count} pages, not {pages}")
    return timing[0]


def parse_directly(pdf: Path) -> Timing:
    """PDFium's text extraction alone, page by page."""
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    chars = 0
    with timed() as timing:
        document = pdfium.PdfDocument(str(pdf))
        try:
            for index in range(len(document)):
                page = document[index]
                textpage = page.get_textpage()
                chars += len(textpage.get_text_range())
                textpage.close()
                page.close()
        finally:
            document.close()
    if not chars:
        raise RuntimeError("PDFium found no text")
    return timing[0]
