"""Erasure: an artifact deleted for good, by its owner, an admin, or the retention period.

An artifact is erased by deleting every blob it ever had (the upload and what each run
wrote), recording ``ArtifactErased`` (who asked, why, when; nothing personal) and
destroying the artifact's key, which makes the personal fields of its earlier events
(filename, summary, failure messages: ``domain.artifact.PERSONAL_FIELDS``) unreadable for
good (crypto-shredding). The read worker removes its row from the list.

A run in flight is stopped first: ``erase`` then records ``ErasureRequested`` with the
cancellation and answers ``PENDING``; the run's last step (recording its outcome, or that it
was cancelled) calls ``complete_pending``, which erases it. Every step can be repeated:
a second erasure finds nothing left to do and answers ``ERASED``.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

import structlog

from application.artifacts import ArtifactsApplication
from application.ports import BlobStore, KeyStore

log = structlog.get_logger(__name__)


class Erasure(StrEnum):
    ERASED = "erased"
    """Erased now."""
    ALREADY = "already"
    """It had been erased already (what might be left of an interrupted erasure is
    deleted again)."""
    PENDING = "pending"
    """A run was in flight: it is being cancelled, and the erasure completes when it stops."""


# Who asked for an erasure, as ``ArtifactErased.by`` records it.
RETENTION = "retention"


def by_tenant(tenant: str) -> str:
    return f"tenant:{tenant}"


def by_admin(principal: str) -> str:
    return f"admin:{principal}"


class Eraser:
    """Erases artifacts (see the module's docstring)."""

    def __init__(self, artifacts: ArtifactsApplication, blob_store: BlobStore, keys: KeyStore):
        self._artifacts = artifacts
        self._blob_store = blob_store
        self._keys = keys

    def erase(self, artifact_id: UUID, *, by: str, reason: str = "request") -> Erasure:
        """Erases the artifact, or starts to (``PENDING``) when a run is in flight; raises
        ``ArtifactNotFound`` for an unknown id."""
        if self._artifacts.get_artifact(artifact_id).erased:
            # Nothing to record: what an interrupted erasure may have left is deleted again.
            self._delete_everything(artifact_id)
            return Erasure.ALREADY
        if not self._artifacts.request_erasure(artifact_id, by=by, reason=reason):
            log.info("erasure_pending", artifact_id=str(artifact_id), reason=reason)
            return Erasure.PENDING
        self._erase_now(artifact_id, by=by, reason=reason)
        return Erasure.ERASED

    def complete_pending(self, artifact_id: UUID) -> bool:
        """Erases the artifact if an erasure waits for its run to stop and the run has
        stopped (recorded its outcome); returns whether it did. ``ArtifactErased`` names
        who asked and why, as ``ErasureRequested`` recorded them."""
        artifact = self._artifacts.get_artifact(artifact_id)
        if artifact.erasure is None or artifact.erased or not artifact.has_outcome:
            return False
        self._erase_now(artifact_id, by=artifact.erasure["by"], reason=artifact.erasure["reason"])
        return True

    def _erase_now(self, artifact_id: UUID, *, by: str, reason: str) -> None:
        # The event first: from then on nothing reads or writes the artifact (the domain
        # refuses), so no new blob can appear behind the deletions. Then the blobs, then
        # the key. Each step is repeated by a second erasure, should one be interrupted.
        self._artifacts.record_erased(artifact_id, by=by, reason=reason)
        self._delete_everything(artifact_id)
        log.info("artifact_erased", artifact_id=str(artifact_id), reason=reason)

    def _delete_everything(self, artifact_id: UUID) -> None:
        for location in self._artifacts.blob_locations(artifact_id):
            self._blob_store.delete(location)
        self._keys.destroy_key(artifact_id)
