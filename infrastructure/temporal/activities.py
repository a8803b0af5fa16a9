"""The activities of ``ProcessArtifactWorkflow``: the steps that touch the world.

They are plain (blocking) methods run in the worker's thread pool, built with the
services they need. Permanent problems are raised as non-retryable ``ApplicationError``s
whose type is the machine-readable reason the artifact's failure records.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import magic
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from application.artifacts import ArtifactNotFound, ArtifactsApplication
from application.ports import BlobNotFound, BlobStore, ProcessingRequest
from domain.artifact import OutcomeAlreadyRecorded
from infrastructure.temporal.models import (
    INSPECT_ARTIFACT,
    RECORD_PROCESSING_FAILURE,
    RECORD_PROCESSING_RESULT,
    Inspection,
    ProcessingFailure,
    ProcessingResult,
)

log = structlog.get_logger(__name__)

CHUNK = 1024 * 1024
# libmagic decides from the first bytes; this much covers every format it knows.
SNIFF_BYTES = 64 * 1024


def permanent(reason: str, message: str) -> ApplicationError:
    """A failure that retrying cannot fix; ``reason`` is recorded on the artifact."""
    return ApplicationError(message, type=reason, non_retryable=True)


class MimeSniffer:
    """libmagic's verdict on a file's first bytes (its handle is not thread-safe)."""

    def __init__(self) -> None:
        self._magic = magic.Magic(mime=True)
        self._lock = threading.Lock()

    def __call__(self, head: bytes) -> str:
        with self._lock:
            return str(self._magic.from_buffer(head))


class ArtifactActivities:
    def __init__(self, artifacts: ArtifactsApplication, blob_store: BlobStore) -> None:
        self._artifacts = artifacts
        self._blob_store = blob_store
        self._sniff = MimeSniffer()

    @activity.defn(name=INSPECT_ARTIFACT)
    def inspect_artifact(self, request: ProcessingRequest) -> Inspection:
        """Checks the stored blob against the upload's facts and sniffs its real MIME type."""
        try:
            blob = self._blob_store.open(request.storage_location)
        except BlobNotFound as err:
            raise permanent("blob_missing", str(err)) from None
        digest = hashlib.sha256()
        size = 0
        head = b""
        with blob:
            while chunk := blob.read(CHUNK):
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                digest.update(chunk)
                size += len(chunk)
                activity.heartbeat(size)
        if size != request.size or digest.hexdigest() != request.sha256:
            raise permanent(
                "blob_corrupted",
                f"stored blob has {size} bytes and sha256 {digest.hexdigest()}, "
                f"expected {request.size} bytes and sha256 {request.sha256}",
            )
        mime_type = self._sniff(head)
        log.info(
            "artifact_inspected",
            artifact_id=str(request.artifact_id),
            mime_type=mime_type,
            storage_location=request.storage_location,
            size=size,
        )
        return Inspection(mime_type=mime_type, size=size)

    @activity.defn(name=RECORD_PROCESSING_RESULT)
    def record_processing_result(self, result: ProcessingResult) -> None:
        """Writes success back to the aggregate (a repeat adds nothing)."""
        with _domain_errors_are_permanent():
            self._artifacts.record_processing_result(result.artifact_id, mime_type=result.mime_type)
        log.info("processing_recorded", artifact_id=str(result.artifact_id), status="processed")

    @activity.defn(name=RECORD_PROCESSING_FAILURE)
    def record_processing_failure(self, failure: ProcessingFailure) -> None:
        """Writes the failure back to the aggregate (a repeat adds nothing)."""
        with _domain_errors_are_permanent():
            self._artifacts.record_processing_failure(
                failure.artifact_id, reason=failure.reason, message=failure.message
            )
        log.info(
            "processing_failed",
            artifact_id=str(failure.artifact_id),
            reason=failure.reason,
            message=failure.message,
        )

    def all(self) -> list[Callable[..., object]]:
        """Every activity, for registering with a worker."""
        return [
            self.inspect_artifact,
            self.record_processing_result,
            self.record_processing_failure,
        ]


@contextmanager
def _domain_errors_are_permanent() -> Iterator[None]:
    try:
        yield
    except ArtifactNotFound as err:
        raise permanent("artifact_not_found", str(err)) from err
    except OutcomeAlreadyRecorded as err:
        raise permanent("outcome_conflict", str(err)) from err
