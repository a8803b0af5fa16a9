"""PDF text extraction in a limited child process: pages, hostile files, heartbeats, resume."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from application.processing import FailureReason, UnprocessableContent
from infrastructure.blobstore import LocalBlobStore
from infrastructure.processing.limits import MIB, ChildFailed, ProcessLimits
from infrastructure.processing.pdf import PdfLimits, PdfProgress, PdfText, extract_pdf_text
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


def extract(
    path: Path,
    store: LocalBlobStore,
    *,
    limits: PdfLimits | None = None,
    resume_from: PdfProgress | None = None,
    heartbeat: Callable[[PdfProgress], None] = lambda progress: None,
) -> PdfText:
    with path.open("rb") as source:
        return extract_pdf_text(
            source,
            blob_store=store,
            limits=limits,
            resume_from=resume_from,
            heartbeat=heartbeat,
            scratch_dir=path.parent,
        )


def pages_of(text: PdfText, store: LocalBlobStore) -> list[str]:
    whole = read_text(store, text.text_locations, max_chars=10 * MIB)
    assert whole.endswith(PAGE_END)
    return whole.split(PAGE_END)[:-1]


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
    assert text.page_count == 5
    assert len(text.text_locations) == 3
    assert text.chars == sum(len(corpus.page_text(number)) + 1 for number in range(1, 6))
    assert [progress.next_page for progress in heartbeats] == [2, 4, 5]
    assert heartbeats[-1].text_locations == text.text_locations


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
    assert text.text_locations[:2] == resume_from.text_locations
    assert pages_of(text, store) == [corpus.page_text(number) for number in range(1, 11)]


def test_a_retry_after_the_last_batch_parses_no_page_again(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    path = corpus.text_pdf(tmp_path, 4)
    done = extract(path, store)
    progress = PdfProgress(done.page_count, done.page_count, done.text_locations, done.chars)
    heartbeats: list[PdfProgress] = []

    again = extract(path, store, resume_from=progress, heartbeat=heartbeats.append)

    assert again == done
    assert heartbeats == []


def test_resuming_with_progress_of_another_document_is_worth_a_retry(
    tmp_path: Path, store: LocalBlobStore
) -> None:
    with pytest.raises(ChildFailed, match="12 pages"):
        extract(
            corpus.text_pdf(tmp_path, 3),
            store,
            resume_from=PdfProgress(page_count=12, next_page=2, text_locations=("00/x",)),
        )


@pytest.mark.parametrize(
    "details",
    [
        None,
        "garbage",
        {"next_page": 3},
        {"page_count": 3, "next_page": 0, "text_locations": [], "chars": 0},
        {"page_count": 3, "next_page": 4, "text_locations": [], "chars": 0},
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
    (server,) = fork_servers(psutil.Process())
    path = corpus.dense_text_pdf(tmp_path, 100)
    before = _reaped_children_faults(server)

    extract(path, store)

    # The fork's copy-on-write and PDFium's first page take about 2,000.
    assert _reaped_children_faults(server) - before < 10_000


def _reaped_children_faults(process: psutil.Process) -> int:
    # /proc/PID/stat's cminflt: the minor faults of the children it reaped.
    with open(f"/proc/{process.pid}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[7])
