"""The use cases: an eventsourcing Application over the Artifact aggregate."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Mapper, RecordConflictError

from application.ports import ContentFacts, ProcessingRequest, SummaryCandidate
from domain.artifact import DEFAULT_TENANT, Artifact, ArtifactCreated, ArtifactProcessed


@dataclass(frozen=True)
class HistoryEntry:
    type: str
    at: datetime
    version: int


class ArtifactNotFound(LookupError):  # noqa: N818 - a domain word
    """No artifact has the given id."""


# Artifact ids of idempotent uploads are uuid5(IDEMPOTENCY_NAMESPACE, key). Never change it:
# retries of requests made before the change would create second artifacts.
IDEMPOTENCY_NAMESPACE = UUID("5b0c52a4-6a0e-4e0f-9c1e-3d6f2f7f0a11")


@dataclass(frozen=True)
class CreatedArtifact:
    id: UUID
    # True when the request had been made before: this is the first request's artifact.
    replayed: bool = False


# Concurrent writers to one artifact (a retried activity racing its first attempt, say)
# collide on the stream version; the loser reloads and applies its command again.
_CONFLICT_RETRIES = 5


class ArtifactsApplication(Application[UUID]):
    """Creates artifacts and records what processing made of them."""

    # Fixed, so that renaming the class never orphans stored tracking positions.
    name = "Artifacts"
    last_written_position = 0

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        sealing: Callable[[Mapper[UUID]], Mapper[UUID]] | None = None,
    ) -> None:
        """``sealing`` wraps the event mapper so that the personal fields of the events
        are stored sealed under each artifact's key (crypto-shredding: every process the
        composition root builds has it; see ``infrastructure/eventstore/shredding.py``)."""
        self._sealing = sealing
        super().__init__(env)

    def construct_mapper(self) -> Mapper[UUID]:
        mapper = super().construct_mapper()
        return self._sealing(mapper) if self._sealing is not None else mapper

    def create_artifact_once(
        self,
        *,
        idempotency_key: str | None,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        storage_location: str,
        tenant: str = DEFAULT_TENANT,
    ) -> CreatedArtifact:
        """Records a stored upload as a new artifact (``ArtifactCreated``), at most once per
        ``idempotency_key``.

        The artifact's id is derived from the key (uuid5), so no index or second aggregate
        is needed: the event store's optimistic concurrency control makes the second
        ``ArtifactCreated`` for the same id fail atomically, whichever of two racing requests
        (in one process or several) comes second, and the loser answers with the winner's
        artifact (``replayed``). Exactly one ``ArtifactCreated`` per key, on every event
        store. The caller scopes the key (to its tenant) before passing it in. Without a
        key, every call creates a new artifact.
        """
        artifact = Artifact.create(
            id=artifact_id_for(idempotency_key) if idempotency_key is not None else None,
            filename=filename,
            content_type=content_type,
            size=size,
            sha256=sha256,
            storage_location=storage_location,
            tenant=tenant,
        )
        try:
            self._save(artifact)
        except RecordConflictError:
            # Lost to an earlier request with this key; its blob is ours no longer (an
            # orphan, for `sweep_orphans`).
            return CreatedArtifact(id=self.get_artifact(artifact.id).id, replayed=True)
        return CreatedArtifact(id=artifact.id)

    def artifact_for_key(self, idempotency_key: str) -> UUID | None:
        """The id of the artifact created with ``idempotency_key``, if there is one."""
        artifact_id = artifact_id_for(idempotency_key)
        try:
            return self.get_artifact(artifact_id).id
        except ArtifactNotFound:
            return None

    def _save(self, artifact: Artifact) -> None:
        recordings = self.save(artifact)
        if recordings:
            # The read model's position to wait for, for reads that must see this write.
            self.last_written_position = max(
                self.last_written_position, recordings[-1].notification.id
            )

    def get_artifact(self, artifact_id: UUID) -> Artifact:
        """Returns the artifact's current state; raises ``ArtifactNotFound``."""
        try:
            artifact: Artifact = self.repository.get(artifact_id)
        except AggregateNotFoundError:
            raise ArtifactNotFound(f"no artifact with id {artifact_id}") from None
        return artifact

    def record_processing_started(self, artifact_id: UUID, *, run: int, workflow_id: str) -> None:
        """Records that processing run ``run`` is under way (status ``processing``)."""
        self._update(
            artifact_id, lambda artifact: artifact.record_started(run=run, workflow_id=workflow_id)
        )

    def record_processing_result(
        self,
        artifact_id: UUID,
        *,
        run: int,
        facts: ContentFacts,
        summary: SummaryCandidate | None = None,
    ) -> None:
        """Records success and the summary candidate together (one atomic save).

        A retried write-back of the same result adds no event.
        """

        def command(artifact: Artifact) -> None:
            artifact.record_processed(
                run=run,
                mime_type=facts.mime_type,
                kind=facts.kind,
                page_count=facts.page_count,
                char_count=facts.char_count,
                text_locations=list(facts.text_locations),
                details=dict(facts.details),
                markdown_location=facts.markdown_location,
                chunks_location=facts.chunks_location,
                pages_location=facts.pages_location,
                language=facts.language,
                warnings=list(facts.warnings),
            )
            if summary is not None:
                artifact.add_summary_candidate(
                    run=run,
                    text=summary.text,
                    source=summary.source,
                    model=summary.model,
                    pipeline_version=summary.pipeline_version,
                )

        self._update(artifact_id, command)

    def record_processing_failure(
        self, artifact_id: UUID, *, run: int, reason: str, message: str
    ) -> None:
        """Records failure with a machine-readable reason; an identical repeat adds no event."""
        self._update(
            artifact_id,
            lambda artifact: artifact.record_failed(run=run, reason=reason, message=message),
        )

    def request_cancellation(self, artifact_id: UUID) -> int:
        """Asks for the artifact's run in flight to stop (``CancellationRequested``).

        Returns the run's number; raises ``CancellationNotAllowed`` when it has an outcome.
        The pipeline worker asks Temporal to cancel the run; the run records
        ``ProcessingCancelled`` once it has stopped.
        """
        runs: list[int] = []
        self._update(artifact_id, lambda artifact: runs.append(artifact.request_cancellation()))
        return runs[-1]

    def record_processing_cancelled(
        self, artifact_id: UUID, *, run: int, reason: str, message: str
    ) -> None:
        """Records that run ``run`` stopped without a result; an identical repeat adds no event."""
        self._update(
            artifact_id,
            lambda artifact: artifact.record_cancelled(run=run, reason=reason, message=message),
        )

    def request_reprocessing(self, artifact_id: UUID) -> int:
        """Opens the artifact's next processing run (``ReprocessingRequested``); returns it.

        The pipeline worker starts a new, distinct workflow run for it.
        """
        runs: list[int] = []
        self._update(artifact_id, lambda artifact: runs.append(artifact.request_reprocessing()))
        return runs[-1]

    def request_erasure(self, artifact_id: UUID, *, by: str, reason: str) -> bool:
        """Asks for the artifact to be erased (``Artifact.request_erasure``): True when it
        can be erased now, False when its run in flight must stop first (recorded)."""
        now: list[bool] = []
        self._update(
            artifact_id, lambda artifact: now.append(artifact.request_erasure(by=by, reason=reason))
        )
        return now[-1]

    def record_erased(self, artifact_id: UUID, *, by: str, reason: str) -> None:
        """Records ``ArtifactErased``; a repeat adds nothing."""
        self._update(artifact_id, lambda artifact: artifact.record_erased(by=by, reason=reason))

    def blob_locations(self, artifact_id: UUID) -> list[str]:
        """Every blob the artifact ever had: its upload and what each run wrote (an
        earlier run's outputs too), from its events; what erasure deletes."""
        locations: list[str] = []
        for event in self.repository.event_store.get(artifact_id):
            if isinstance(event, ArtifactCreated):
                locations.append(event.storage_location)
            elif isinstance(event, ArtifactProcessed):
                locations.extend(event.text_locations)
                for location in (
                    event.markdown_location,
                    event.chunks_location,
                    event.pages_location,
                ):
                    if location:
                        locations.append(location)
        return list(dict.fromkeys(locations))

    def processing_request_for(self, artifact_id: UUID, *, run: int) -> ProcessingRequest:
        """The request for the artifact's processing run ``run``."""
        return processing_request(self.get_artifact(artifact_id), run=run)

    def history(self, artifact_id: UUID) -> list[HistoryEntry]:
        """The artifact's domain events, oldest first: what happened to the file."""
        events = cast("list[Artifact.Event]", list(self.repository.event_store.get(artifact_id)))
        if not events:
            raise ArtifactNotFound(f"no artifact with id {artifact_id}")
        return [
            HistoryEntry(
                type=type(event).__name__,
                at=event.timestamp,
                version=event.originator_version,
            )
            for event in events
        ]

    def _update(self, artifact_id: UUID, command: Callable[[Artifact], object]) -> None:
        for attempt in range(_CONFLICT_RETRIES):
            artifact = self.get_artifact(artifact_id)
            command(artifact)
            try:
                self._save(artifact)
            except RecordConflictError:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
            else:
                return


def artifact_id_for(idempotency_key: str) -> UUID:
    """The id an artifact created with ``idempotency_key`` has."""
    return uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key)


def processing_request(artifact: Artifact | ArtifactCreated, *, run: int = 0) -> ProcessingRequest:
    """The request for processing run ``run`` of an artifact.

    From the aggregate, or straight from its ``ArtifactCreated`` event: the event carries the
    same upload facts, so the upload's own run needs no read of the event store.
    """
    return ProcessingRequest(
        artifact_id=artifact.id if isinstance(artifact, Artifact) else artifact.originator_id,
        storage_location=artifact.storage_location,
        content_type=artifact.content_type,
        size=artifact.size,
        sha256=artifact.sha256,
        run=run,
        tenant=artifact.tenant,
    )
