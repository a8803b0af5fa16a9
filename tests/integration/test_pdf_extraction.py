"""PDF text extraction in a limited child process: pages, hostile files, heartbeats, resume."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from application.processing import FailureReason, UnprocessableContent
from infrastructure.blobstore import LocalBlobStore
from infrastructure.processing.document import DocumentWriter, WrittenDocument
from infrastructure.processing.limits import MIB, ChildFailed, ProcessLimits
from infrastructure.processing.pdf import PdfLimits, PdfProgress, extract_pdf
from infrastructure.processing.text import PAGE_END, read_text
from tests import corpus
from tests.support import fork_servers, no_parser_outlives


class WorkerLost(Exception):
    """Stands for the worker dying mid-activity."""


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture(autouse=True)
def no_parser_outlives_a_test() -> Iterator[None]:
    with no_parser_outlives():
        yield


@dataclass(frozen=True)
class Extracted:
    progress: PdfProgress
    document: WrittenDocument

    @property
    def page_count(self) -> int:
        return self.progress.page_count


def extract(
    path: Path,
    store: LocalBlobStore,
    *,
    limits: PdfLimits | None = None,
    resume_from: PdfProgress | None = None,
    heartbeat: Callable[[PdfProgress], None] = lambda progress: None,
) -> Extracted:
    with path.open("rb") as source, DocumentWriter(store) as writer:
        progress = extract_pdf(
            source,
            writer,
            blob_store=store,
            limits=limits,
            resume_from=resume_from,
            heartbeat=heartbeat,
            scratch_dir=path.parent,
        )
        return Extracted(progress, writer.finish())


def pages_of(extracted: Extracted, store: LocalBlobStore) -> list[str]:
    whole = read_text(store, extracted.document.text_locations, max_chars=10 * MIB)
    assert whole.endswith(PAGE_END)
    return whole.split(PAGE_END)[:-1]


def stored_text(store: LocalBlobStore, *locations: str | None) -> str:
    return read_text(store, [str(location) for location in locations], max_chars=10 * MIB)


def stored_blobs(store: LocalBlobStore) -> list[Path]:
    return [path for path in store.root.rglob("*") if path.is_file()]


def test_every_pages_text_is_stored_in_order(tmp_path: Path, store: LocalBlobStore) -> None:
    heartbeats: list[PdfProgress] = []

    text = extract(
        corpus.text_pdf(tmp_path, 5),
        store,
        limits=PdfLimits(page_batch=2),
        heartbeat=heartbeats.append,
    )

    assert pages_of(text, store) == [corpus.page_text(number) for number in range(1, 6)]
    assert (text.page_count, text.document.page_count) == (5, 5)
    assert text.document.char_count == sum(
        len(corpus.page_text(number)) + 1 for number in range(1, 6)
    )
    assert [progress.next_page for progress in heartbeats] == [2, 4, 5]
    # Each batch is stored, as JSON lines of its blocks, for a retry to resume from.
    assert heartbeats[-1].block_locations == text.progress.block_locations
    assert len(text.progress.block_locations) == 3
    first_batch = stored_text(store, text.progress.block_locations[0]).splitlines()
    assert [json.loads(line) for line in first_batch] == [
        {"type": "page", "number": 1, "source": "text", "confidence": None},
        {"type": "paragraph", "text": corpus.page_text(1)},
        {"type": "page", "number": 2, "source": "text", "confidence": None},
        {"type": "paragraph", "text": corpus.page_text(2)},
    ]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (corpus.encrypted_pdf, FailureReason.ENCRYPTED),
        (corpus.truncated_pdf, FailureReason.CORRUPT),
        (corpus.cyclic_page_tree_pdf, FailureReason.CORRUPT),
        (corpus.huge_xref_pdf, FailureReason.CORRUPT),
        (corpus.looping_xref_pdf, FailureReason.CORRUPT),
        # PDFium inflates it until the child's memory limit stops it.
        (corpus.decompression_bomb_pdf, FailureReason.TOO_LARGE),
        (corpus.zip_disguised_as_pdf, FailureReason.CORRUPT),
        # PDFium refuses a document whose page tree is empty.
        (corpus.pageless_pdf, FailureReason.CORRUPT),
    ],
)
def test_a_hostile_or_broken_pdf_fails_with_its_reason(
    tmp_path: Path,
    store: LocalBlobStore,
    make: Callable[[Path], Path],
    reason: FailureReason,
) -> None:
    with pytest.raises(UnprocessableContent) as failed:
        extract(make(tmp_path), store)

    assert failed.value.reason is reason
    assert stored_blobs(store) == []


def test_a_pdf_over_the_page_cap_is_refused_before_any_page_is_read(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    heartbeats: list[PdfProgress] = []

    with pytest.raises(UnprocessableContent) as failed:
        extract(
            corpus.text_pdf(tmp_path, 1000),
            store,
            limits=PdfLimits(max_pages=500),
            heartbeat=heartbeats.append,
        )

    assert failed.value.reason is FailureReason.TOO_MANY_PAGES
    assert "1000 pages" in failed.value.message
    assert heartbeats == []
    assert stored_blobs(store) == []


def test_a_pdf_that_needs_more_memory_than_allowed_is_too_large(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    limits = PdfLimits(process=ProcessLimits(memory_bytes=64 * MIB))
    # The same limit is plenty for an ordinary document.
    assert extract(corpus.text_pdf(tmp_path, 50), store, limits=limits).page_count == 50

    with pytest.raises(UnprocessableContent) as failed:
        extract(corpus.deeply_nested_pdf(tmp_path), store, limits=limits)

    assert failed.value.reason is FailureReason.TOO_LARGE


def test_a_retry_resumes_after_the_last_page_batch_it_heartbeat(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    path = corpus.text_pdf(tmp_path, 10)
    limits = PdfLimits(page_batch=3)
    details: list[object] = []

    def heartbeat_then_die_after_two_batches(progress: PdfProgress) -> None:
        # What Temporal keeps: the details as they were serialised.
        details.append(progress.to_details())
        if len(details) == 2:
            raise WorkerLost

    with pytest.raises(WorkerLost):
        extract(path, store, limits=limits, heartbeat=heartbeat_then_die_after_two_batches)
    resume_from = PdfProgress.from_details(details[-1])
    assert resume_from is not None
    assert resume_from.next_page == 6

    heartbeats: list[PdfProgress] = []
    text = extract(path, store, limits=limits, resume_from=resume_from, heartbeat=heartbeats.append)

    # Only pages 7 to 10 were parsed again, in two batches.
    assert [progress.next_page for progress in heartbeats] == [9, 10]
    assert text.progress.block_locations[:2] == resume_from.block_locations
    assert pages_of(text, store) == [corpus.page_text(number) for number in range(1, 11)]
    whole = extract(path, store, limits=limits).document
    for output in ("markdown_location", "chunks_location", "pages_location"):
        resumed = stored_text(store, getattr(text.document, output))
        assert resumed == stored_text(store, getattr(whole, output)), output


def test_a_retry_after_the_last_batch_parses_no_page_again(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    path = corpus.text_pdf(tmp_path, 4)
    done = extract(path, store)
    heartbeats: list[PdfProgress] = []

    again = extract(path, store, resume_from=done.progress, heartbeat=heartbeats.append)

    assert again.progress == done.progress
    assert stored_text(store, *again.document.text_locations) == stored_text(
        store, *done.document.text_locations
    )
    assert heartbeats == []


def test_a_retry_whose_stored_batches_are_gone_starts_over(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    path = corpus.text_pdf(tmp_path, 4)
    done = extract(path, store, limits=PdfLimits(page_batch=2))
    for location in done.progress.block_locations:
        store.delete(location)
    heartbeats: list[PdfProgress] = []

    again = extract(
        path,
        store,
        limits=PdfLimits(page_batch=2),
        resume_from=done.progress,
        heartbeat=heartbeats.append,
    )

    assert [progress.next_page for progress in heartbeats] == [2, 4]
    assert pages_of(again, store) == pages_of(done, store)


def test_resuming_with_progress_of_another_document_is_worth_a_retry(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    with pytest.raises(ChildFailed, match="12 pages"):
        extract(
            corpus.text_pdf(tmp_path, 3),
            store,
            resume_from=PdfProgress(page_count=12, next_page=2),
        )


@pytest.mark.parametrize(
    "details",
    [
        None,
        "garbage",
        {"next_page": 3},
        {"page_count": 3, "next_page": 0, "block_locations": []},
        {"page_count": 3, "next_page": 4, "block_locations": []},
        # Progress as an earlier version heartbeat it (text batches, no blocks).
        {"page_count": 3, "next_page": 2, "text_locations": ["00/x"], "chars": 10},
    ],
)
def test_heartbeat_details_without_usable_progress_start_over(details: object) -> None:
    assert PdfProgress.from_details(details) is None


def test_a_100_page_pdf_is_extracted_in_seconds(tmp_path: Path, store: LocalBlobStore) -> None:
    path = corpus.text_pdf(tmp_path, 100)
    started = time.monotonic()

    text = extract(path, store)

    assert time.monotonic() - started < 10
    assert text.page_count == 100
    assert pages_of(text, store)[99] == corpus.page_text(100)


def test_the_parser_child_imports_only_what_parsing_needs() -> None:
    # Every document starts a fresh interpreter, which pays for each import again.
    heavy = ("charset_normalizer", "temporalio", "eventsourcing", "structlog", "pydantic")
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, infrastructure.processing.limits, infrastructure.processing.pdf; "
            "print(sorted({name.partition('.')[0] for name in sys.modules}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert not [name for name in heavy if repr(name) in loaded]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the heap slack is glibc's")
def test_the_parser_reuses_its_heap_from_page_to_page(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    # Without slack, glibc gave PDFium's per-page megabyte back to the kernel after every
    # page of dense text and faulted it in again for the next: about 240 faults a page.
    extract(corpus.text_pdf(tmp_path, 1), store)  # the fork server is up
    path = corpus.dense_text_pdf(tmp_path, 100)
    # Earlier tests may have left fork servers of other preloads: count them all.
    before = _reaped_faults_of_all_servers()

    extract(path, store)

    # The fork's copy-on-write and PDFium's first page take about 2,000.
    assert _reaped_faults_of_all_servers() - before < 10_000


def _reaped_faults_of_all_servers() -> int:
    return sum(_reaped_children_faults(server) for server in fork_servers(psutil.Process()))


def _reaped_children_faults(process: psutil.Process) -> int:
    # /proc/PID/stat's cminflt: the minor faults of the children it reaped.
    with open(f"/proc/{process.pid}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[7])
