"""The activities of ``ProcessArtifactWorkflow``: the steps that touch the world.

They are plain (blocking) methods run in the worker's thread pool, built with the
services they need. Permanent problems are raised as non-retryable ``ApplicationError``s
whose type is the machine-readable reason the artifact's failure records; everything
else is retried by Temporal within the workflow's bounded retry policies.

An activity that finds its artifact erased finishes quietly, writing nothing: the run is
moot. The steps that record a run's end complete an erasure that waited for the run to
stop (``Eraser.complete_pending``), and nothing of a cancelled run is left in the blob
store: the extract step deletes its stored batches, recording the cancellation the run's
other outputs.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO
from uuid import UUID

import magic
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from application.artifacts import ArtifactsApplication
from application.erasure import Eraser
from application.ports import (
    BlobNotFound,
    BlobStore,
    ContentFacts,
    ProcessingRequest,
    Summarizer,
    SummaryCandidate,
    SummaryUnavailable,
)
from application.processing import ContentKind, content_kind
from domain.errors import AlreadyErased
from infrastructure.processing import language
from infrastructure.processing.extraction import ExtractionJob, delete_all, extract
from infrastructure.processing.options import ProcessingOptions
from infrastructure.processing.pdf import PdfProgress
from infrastructure.processing.sniffing import refine_mime_type
from infrastructure.processing.text import read_text, store_text
from infrastructure.temporal.failures import (
    domain_errors_are_permanent,
    permanent,
    processing_failures_are_permanent,
)
from infrastructure.temporal.models import (
    EXTRACT_CONTENT,
    INSPECT_ARTIFACT,
    RECORD_PROCESSING_CANCELLED,
    RECORD_PROCESSING_FAILURE,
    RECORD_PROCESSING_RESULT,
    RECORD_PROCESSING_STARTED,
    SUMMARIZE_TEXT,
    Extraction,
    Inspection,
    ProcessingCancellation,
    ProcessingFailure,
    ProcessingResult,
    ProcessingStart,
    SummaryReference,
    SummaryRequest,
)

log = structlog.get_logger(__name__)

CHUNK = 1024 * 1024
# libmagic decides from the first bytes; this much covers every format it knows.
SNIFF_BYTES = 64 * 1024
# A ZIP's central directory (and often [Content_Types].xml) is at its end, an OLE2 file's
# directory anywhere: the end is kept too, for ``refine_mime_type``.
TAIL_BYTES = 256 * 1024


class MimeSniffer:
    """libmagic's verdict on a file's first bytes (its handle is not thread-safe)."""

    def __init__(self) -> None:
        self._magic = magic.Magic(mime=True)
        self._lock = threading.Lock()

    def __call__(self, head: bytes) -> str:
        with self._lock:
            return str(self._magic.from_buffer(head))


class ArtifactActivities:
    def __init__(
        self,
        artifacts: ArtifactsApplication,
        blob_store: BlobStore,
        summarizer: Summarizer,
        options: ProcessingOptions | None = None,
        *,
        eraser: Eraser | None = None,
    ) -> None:
        self._artifacts = artifacts
        self._blob_store = blob_store
        self._summarizer = summarizer
        self._options = options or ProcessingOptions()
        # None only where nothing is ever erased (benchmarks, extraction tools): the
        # Temporal worker always has one (the composition root).
        self._eraser = eraser
        self._sniff = MimeSniffer()
        language.warm_up()

    @activity.defn(name=RECORD_PROCESSING_STARTED)
    def record_processing_started(self, start: ProcessingStart) -> None:
        """Marks the artifact ``processing`` for this run (a repeat adds nothing)."""
        with _about(start.artifact_id), _quiet_if_erased():
            with domain_errors_are_permanent():
                self._artifacts.record_processing_started(
                    start.artifact_id, run=start.run, workflow_id=start.workflow_id
                )
            log.info("processing_started", run=start.run)

    @activity.defn(name=INSPECT_ARTIFACT)
    def inspect_artifact(self, request: ProcessingRequest) -> Inspection:
        """Checks the stored blob against the upload's facts and sniffs its real MIME type."""
        with _about(request.artifact_id):
            return self._inspect(request)

    def _inspect(self, request: ProcessingRequest) -> Inspection:
        digest = hashlib.sha256()
        size = 0
        head = tail = b""
        with self._open(request.storage_location) as blob:
            while chunk := blob.read(CHUNK):
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                tail = (tail + chunk)[-TAIL_BYTES:]
                digest.update(chunk)
                size += len(chunk)
                activity.heartbeat(size)
        if size != request.size or digest.hexdigest() != request.sha256:
            raise permanent(
                "blob_corrupted",
                f"stored blob has {size} bytes and sha256 {digest.hexdigest()}, "
                f"expected {request.size} bytes and sha256 {request.sha256}",
            )
        # The filename is a hint for telling HTML and e-mail from plain text. It is read
        # from the aggregate: the request crosses Temporal, whose histories outlive an
        # erasure, so it names no file.
        with domain_errors_are_permanent():
            filename = self._artifacts.get_artifact(request.artifact_id).filename
        mime_type = refine_mime_type(
            self._sniff(head),
            head=head,
            tail=tail,
            size=size,
            declared_type=request.content_type,
            filename=filename,
        )
        log.info(
            "artifact_inspected",
            mime_type=mime_type,
            storage_location=request.storage_location,
            size=size,
        )
        with processing_failures_are_permanent():
            kind = content_kind(mime_type, self._options.allowed_types)
        return Inspection(mime_type=mime_type, size=size, kind=kind.value)

    @activity.defn(name=EXTRACT_CONTENT)
    def extract_content(self, job: Extraction) -> ContentFacts:
        """Extracts the content into the blob store (text, Markdown, chunks, page facts),
        by the extractor of its kind (``EXTRACTORS``), and returns the facts."""
        with _about(job.artifact_id):
            return self._extract(job)

    def _extract(self, job: Extraction) -> ContentFacts:
        kind = ContentKind(job.kind)
        details = activity.info().heartbeat_details
        # A retry (worker crash, parser crash) resumes from the last heartbeat; the last one
        # of this attempt names the batches a cancellation must delete.
        progress = _LastHeartbeat(details[0] if details else None)
        try:
            with processing_failures_are_permanent(), self._open(job.storage_location) as blob:
                facts = extract(
                    kind,
                    ExtractionJob(
                        source=blob,
                        mime_type=job.mime_type,
                        blob_store=self._blob_store,
                        options=self._options,
                        resume_from=progress.details,
                        heartbeat=progress.beat,
                    ),
                )
        except CancelledError:
            # No retry will resume from the batches: the run stops (an erasure may be
            # waiting for it). The writer discarded its unfinished blobs on the way out.
            delete_all(self._blob_store, progress.block_locations())
            log.info("extraction_cancelled")
            raise
        log.info(
            "content_extracted",
            kind=facts.kind,
            page_count=facts.page_count,
            char_count=facts.char_count,
            language=facts.language,
            warnings=facts.warnings,
        )
        return facts

    @activity.defn(name=SUMMARIZE_TEXT)
    def summarize_text(self, request: SummaryRequest) -> SummaryReference | SummaryCandidate:
        """A summary candidate of the extracted text, stored as a blob (its reference)."""
        # A summarizer cannot report progress (an OpenAI-compatible call may take up to its
        # timeout), so a helper thread heartbeats while it works: a run whose worker died,
        # or whose task or completion Temporal lost in an outage, is retried after the
        # heartbeat timeout instead of the whole start-to-close timeout.
        with _about(request.artifact_id), heartbeating(self._options.heartbeat_every_seconds):
            return self._summarize(request)

    def _summarize(self, request: SummaryRequest) -> SummaryReference | SummaryCandidate:
        try:
            text = read_text(
                self._blob_store,
                request.text_locations,
                max_chars=self._options.summary_input_chars,
            )
        except BlobNotFound as err:
            raise permanent("blob_missing", str(err)) from None
        try:
            summary = self._summarizer.summarize(text)
        except SummaryUnavailable as err:
            if err.retryable:
                raise
            raise permanent("summary_unavailable", str(err)) from None
        log.info(
            "summary_added",
            source=summary.source,
            model=summary.model,
        )
        if not request.by_reference:
            return summary
        # The words stay out of Temporal's history: a blob, which recording the result
        # reads and then deletes (and an erasure or a cancellation deletes with the rest).
        stored = store_text(self._blob_store, summary.text)
        return SummaryReference(
            location=stored.location,
            source=summary.source,
            model=summary.model,
            pipeline_version=summary.pipeline_version,
        )

    @activity.defn(name=RECORD_PROCESSING_RESULT)
    def record_processing_result(self, result: ProcessingResult) -> None:
        """Writes the result and summary back to the aggregate (a repeat adds nothing),
        deletes the stored summary, and completes an erasure that waited for the run."""
        with _about(result.artifact_id):
            stored = [result.summary_ref.location] if result.summary_ref else []
            with _quiet_if_erased(then_delete=stored, blob_store=self._blob_store):
                summary = result.summary or self._stored_summary(result)
                with domain_errors_are_permanent():
                    self._artifacts.record_processing_result(
                        result.artifact_id, run=result.run, facts=result.facts, summary=summary
                    )
                delete_all(self._blob_store, stored)
                log.info("processing_recorded", status="processed")
                self._complete_erasure(result.artifact_id)

    def _stored_summary(self, result: ProcessingResult) -> SummaryCandidate | None:
        """The summary the reference points to; None when there is none, or when a
        retry finds it recorded already (its blob may be deleted by then)."""
        ref = result.summary_ref
        if ref is None:
            return None
        with domain_errors_are_permanent():
            artifact = self._artifacts.get_artifact(result.artifact_id)
        if artifact.erased:
            raise AlreadyErased(f"artifact {result.artifact_id} was erased")
        if artifact.run == result.run and artifact.summary is not None:
            return None
        try:
            text = read_text(self._blob_store, [ref.location], max_chars=_SUMMARY_MAX_CHARS)
        except BlobNotFound as err:
            raise permanent("blob_missing", str(err)) from None
        return SummaryCandidate(
            text=text, source=ref.source, model=ref.model, pipeline_version=ref.pipeline_version
        )

    @activity.defn(name=RECORD_PROCESSING_FAILURE)
    def record_processing_failure(self, failure: ProcessingFailure) -> None:
        """Writes the failure back to the aggregate (a repeat adds nothing)."""
        with _about(failure.artifact_id), _quiet_if_erased():
            with domain_errors_are_permanent():
                self._artifacts.record_processing_failure(
                    failure.artifact_id,
                    run=failure.run,
                    reason=failure.reason,
                    message=failure.message,
                )
            # The reason only: a message may quote the content (it is a personal field).
            log.info("processing_failed", reason=failure.reason)
            self._complete_erasure(failure.artifact_id)

    @activity.defn(name=RECORD_PROCESSING_CANCELLED)
    def record_processing_cancelled(self, cancellation: ProcessingCancellation) -> None:
        """Deletes what the run had written, writes the cancellation back to the aggregate
        (a repeat adds nothing), and completes an erasure that waited for the run."""
        with _about(cancellation.artifact_id):
            # First, and whatever follows: no event references these blobs.
            delete_all(self._blob_store, cancellation.leftover_locations)
            with _quiet_if_erased():
                with domain_errors_are_permanent():
                    self._artifacts.record_processing_cancelled(
                        cancellation.artifact_id,
                        run=cancellation.run,
                        reason=cancellation.reason,
                        message=cancellation.message,
                    )
                log.info("processing_cancelled", reason=cancellation.reason)
                self._complete_erasure(cancellation.artifact_id)

    def _complete_erasure(self, artifact_id: UUID) -> None:
        if self._eraser is not None:
            self._eraser.complete_pending(artifact_id)

    def all(self) -> list[Callable[..., object]]:
        """Every activity, for registering with a worker."""
        return [
            self.record_processing_started,
            self.inspect_artifact,
            self.extract_content,
            self.summarize_text,
            self.record_processing_result,
            self.record_processing_failure,
            self.record_processing_cancelled,
        ]

    @contextmanager
    def _open(self, location: str) -> Iterator[BinaryIO]:
        try:
            blob = self._blob_store.open(location)
        except BlobNotFound as err:
            raise permanent("blob_missing", str(err)) from None
        with blob:
            yield blob


# A summary is a few sentences; this bounds what a record step reads should a blob be odd.
_SUMMARY_MAX_CHARS = 64 * 1024


class _LastHeartbeat:
    """Heartbeats the activity, remembering the last progress reported (its details)."""

    def __init__(self, details: Any) -> None:
        self.details = details

    def beat(self, *details: Any) -> None:
        if details:
            self.details = details[0]
        activity.heartbeat(*details)

    def block_locations(self) -> tuple[str, ...]:
        progress = PdfProgress.from_details(self.details)
        return progress.block_locations if progress else ()


@contextmanager
def _quiet_if_erased(
    *, then_delete: Iterable[str] = (), blob_store: BlobStore | None = None
) -> Iterator[None]:
    """An erased artifact's run is moot: the step ends without error and writes nothing
    (deleting ``then_delete``, blobs of the run no event references)."""
    try:
        yield
    except AlreadyErased:
        if blob_store is not None:
            delete_all(blob_store, then_delete)
        log.info("artifact_erased_step_skipped")
    except ApplicationError as err:
        # A failure retrying cannot fix ends this write for good: its blobs too.
        if err.non_retryable and blob_store is not None:
            delete_all(blob_store, then_delete)
        raise


@contextmanager
def heartbeating(every: float) -> Iterator[None]:
    """Heartbeats the current activity every ``every`` seconds while the block runs."""
    done = threading.Event()
    # The activity's context (which activity.heartbeat reads) is per thread: give the
    # helper a copy of this one.
    context = contextvars.copy_context()

    def beat() -> None:
        while not done.wait(every):
            context.run(activity.heartbeat)

    helper = threading.Thread(target=beat, name="activity-heartbeat", daemon=True)
    helper.start()
    try:
        yield
    finally:
        done.set()
        helper.join()


@contextmanager
def _about(artifact_id: UUID) -> Iterator[None]:
    """Every line logged inside, by this code or a library, names the artifact and the run."""
    with structlog.contextvars.bound_contextvars(
        artifact_id=str(artifact_id), workflow_id=activity.info().workflow_id
    ):
        yield
