"""The use cases: an eventsourcing Application over the Artifact aggregate."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import RecordConflictError

from application.ports import ProcessingRequest
from domain.artifact import Artifact, ArtifactCreated


class ArtifactNotFound(LookupError):  # noqa: N818 - a domain word
    """No artifact has the given id."""


# Concurrent writers to one artifact (a retried activity racing its first attempt, say)
# collide on the stream version; the loser reloads and applies its command again.
_CONFLICT_RETRIES = 5


class ArtifactsApplication(Application[UUID]):
    """Creates artifacts and records what processing made of them."""

    # Fixed, so that renaming the class never orphans stored tracking positions.
    name = "Artifacts"

    def create_artifact(
        self,
        *,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        storage_location: str,
    ) -> UUID:
        """Records a stored upload as a new artifact (``ArtifactCreated``); returns its id."""
        artifact = Artifact.create(
            filename=filename,
            content_type=content_type,
            size=size,
            sha256=sha256,
            storage_location=storage_location,
        )
        self.save(artifact)
        return artifact.id

    def get_artifact(self, artifact_id: UUID) -> Artifact:
        """Returns the artifact's current state; raises ``ArtifactNotFound``."""
        try:
            artifact: Artifact = self.repository.get(artifact_id)
        except AggregateNotFoundError:
            raise ArtifactNotFound(f"no artifact with id {artifact_id}") from None
        return artifact

    def record_processing_result(self, artifact_id: UUID, *, mime_type: str) -> None:
        """Records success; an identical repeat adds no event."""
        self._update(artifact_id, lambda artifact: artifact.record_processed(mime_type=mime_type))

    def record_processing_failure(self, artifact_id: UUID, *, reason: str, message: str) -> None:
        """Records failure with a machine-readable reason; an identical repeat adds no event."""
        self._update(
            artifact_id, lambda artifact: artifact.record_failed(reason=reason, message=message)
        )

    def _update(self, artifact_id: UUID, command: Callable[[Artifact], None]) -> None:
        for attempt in range(_CONFLICT_RETRIES):
            artifact = self.get_artifact(artifact_id)
            command(artifact)
            try:
                self.save(artifact)
            except RecordConflictError:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
            else:
                return


def processing_request(created: ArtifactCreated) -> ProcessingRequest:
    """The processing request that an ``ArtifactCreated`` event calls for."""
    return ProcessingRequest(
        artifact_id=created.originator_id,
        storage_location=created.storage_location,
        filename=created.filename,
        content_type=created.content_type,
        size=created.size,
        sha256=created.sha256,
    )
