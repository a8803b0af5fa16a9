"""The activities of ``ProcessArtifactWorkflow``: the steps that touch the world.

They are plain (blocking) methods run in the worker's thread pool, built with the
services they need. Permanent problems are raised as non-retryable ``ApplicationError``s
whose type is the machine-readable reason the artifact's failure records; everything
else is retried by Temporal within the workflow's bounded retry policies.
"""

from __future__ import annotations

import contextvars
import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO
from uuid import UUID

import magic
import structlog
from temporalio import activity

from application.artifacts import ArtifactsApplication
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
from infrastructure.processing import language
from infrastructure.processing.extraction import ExtractionJob, extract
from infrastructure.processing.options import ProcessingOptions
from infrastructure.processing.sniffing import refine_mime_type
from infrastructure.processing.text import read_text
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
    ) -> None:
        self._artifacts = artifacts
        self._blob_store = blob_store
        self._summarizer = summarizer
        self._options = options or ProcessingOptions()
        self._sniff = MimeSniffer()
        language.warm_up()

    @activity.defn(name=RECORD_PROCESSING_STARTED)
    def record_processing_started(self, start: ProcessingStart) -> None:
        """Marks the artifact ``processing`` for this run (a repeat adds nothing)."""
        with _about(start.artifact_id):
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
        mime_type = refine_mime_type(
            self._sniff(head),
            head=head,
            tail=tail,
            size=size,
            declared_type=request.content_type,
            filename=request.filename,
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
        with processing_failures_are_permanent(), self._open(job.storage_location) as blob:
            facts = extract(
                kind,
                ExtractionJob(
                    source=blob,
                    mime_type=job.mime_type,
                    blob_store=self._blob_store,
                    options=self._options,
                    # A retry (worker crash, parser crash) resumes from the last heartbeat.
                    resume_from=details[0] if details else None,
                    heartbeat=activity.heartbeat,
                ),
            )
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
    def summarize_text(self, request: SummaryRequest) -> SummaryCandidate:
        """A summary candidate of the extracted text."""
        # A summarizer cannot report progress (an OpenAI-compatible call may take up to its
        # timeout), so a helper thread heartbeats while it works: a run whose worker died,
        # or whose task or completion Temporal lost in an outage, is retried after the
        # heartbeat timeout instead of the whole start-to-close timeout.
        with _about(request.artifact_id), heartbeating(self._options.heartbeat_every_seconds):
            return self._summarize(request)

    def _summarize(self, request: SummaryRequest) -> SummaryCandidate:
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
        return summary

    @activity.defn(name=RECORD_PROCESSING_RESULT)
    def record_processing_result(self, result: ProcessingResult) -> None:
        """Writes the result and summary back to the aggregate (a repeat adds nothing)."""
        with _about(result.artifact_id):
            with domain_errors_are_permanent():
                self._artifacts.record_processing_result(
                    result.artifact_id, run=result.run, facts=result.facts, summary=result.summary
                )
            log.info("processing_recorded", status="processed")

    @activity.defn(name=RECORD_PROCESSING_FAILURE)
    def record_processing_failure(self, failure: ProcessingFailure) -> None:
        """Writes the failure back to the aggregate (a repeat adds nothing)."""
        with _about(failure.artifact_id):
            with domain_errors_are_permanent():
                self._artifacts.record_processing_failure(
                    failure.artifact_id,
                    run=failure.run,
                    reason=failure.reason,
                    message=failure.message,
                )
            log.info("processing_failed", reason=failure.reason, message=failure.message)

    @activity.defn(name=RECORD_PROCESSING_CANCELLED)
    def record_processing_cancelled(self, cancellation: ProcessingCancellation) -> None:
        """Writes the cancellation back to the aggregate (a repeat adds nothing)."""
        with _about(cancellation.artifact_id):
            with domain_errors_are_permanent():
                self._artifacts.record_processing_cancelled(
                    cancellation.artifact_id,
                    run=cancellation.run,
                    reason=cancellation.reason,
                    message=cancellation.message,
                )
            log.info("processing_cancelled", reason=cancellation.reason)

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
