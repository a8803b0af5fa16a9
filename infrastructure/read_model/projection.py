"""``ArtifactListProjection``: what each Artifact event changes in the artifact list.

An eventsourcing ``Projection``: the runner (infrastructure/read_worker.py) feeds it the
events of the ``topics`` below with their tracking records, in order, and each event becomes
one write to the view that records the tracking record in the same transaction.
"""

from __future__ import annotations

from typing import Any

import structlog
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic

from domain.artifact import (
    ArtifactCreated,
    ArtifactErased,
    ArtifactProcessed,
    ArtifactProcessingFailed,
    ArtifactStatus,
    ProcessingCancelled,
    ProcessingStarted,
    ReprocessingRequested,
    SummaryCandidateAdded,
)
from infrastructure.read_model.view import ArtifactListView

log = structlog.get_logger(__name__)

# The view's stored name: its SQLite file (read_model.sqlite3) and its PostgreSQL tracking
# table (read_model_tracking) are named after it. The process that writes it is the
# read_worker; renaming this would leave existing deployments with an empty view.
VIEW_STORE = "read_model"


class ArtifactListProjection(Projection[ArtifactListView]):
    name = VIEW_STORE
    topics = tuple(
        get_topic(event_class)
        for event_class in (
            ArtifactCreated,
            ProcessingStarted,
            ArtifactProcessed,
            SummaryCandidateAdded,
            ArtifactProcessingFailed,
            ProcessingCancelled,
            ReprocessingRequested,
            ArtifactErased,
        )
    )

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        # An event the list does not show: only the position moves on.
        self._applied(self.view.record_position(tracking), tracking)

    @process_event.register(ArtifactCreated)
    def _created(self, event: ArtifactCreated, tracking: Tracking) -> None:
        self._applied(self.view.add_artifact(event, tracking), tracking)

    @process_event.register(ProcessingStarted)
    def _started(self, event: ProcessingStarted, tracking: Tracking) -> None:
        changes = {"status": ArtifactStatus.PROCESSING.value}
        self._applied(self.view.update_artifact(event, changes, tracking), tracking)

    @process_event.register(ArtifactProcessed)
    def _processed(self, event: ArtifactProcessed, tracking: Tracking) -> None:
        changes = {
            "status": ArtifactStatus.PROCESSED.value,
            "mime_type": event.mime_type,
            "page_count": event.page_count,
        }
        self._applied(self.view.update_artifact(event, changes, tracking), tracking)

    @process_event.register(SummaryCandidateAdded)
    def _summary_added(self, event: SummaryCandidateAdded, tracking: Tracking) -> None:
        self._applied(self.view.update_artifact(event, {"has_summary": True}, tracking), tracking)

    @process_event.register(ArtifactProcessingFailed)
    def _failed(self, event: ArtifactProcessingFailed, tracking: Tracking) -> None:
        changes = {"status": ArtifactStatus.FAILED.value, "failure_reason": event.reason}
        self._applied(self.view.update_artifact(event, changes, tracking), tracking)

    @process_event.register(ProcessingCancelled)
    def _cancelled(self, event: ProcessingCancelled, tracking: Tracking) -> None:
        changes = {"status": ArtifactStatus.CANCELLED.value, "failure_reason": event.reason}
        self._applied(self.view.update_artifact(event, changes, tracking), tracking)

    @process_event.register(ReprocessingRequested)
    def _reprocessing_requested(self, event: ReprocessingRequested, tracking: Tracking) -> None:
        # As the aggregate does: the previous run's outcome is gone, the new run not started.
        changes = {
            "status": ArtifactStatus.UPLOADED.value,
            "mime_type": None,
            "page_count": None,
            "failure_reason": None,
            "has_summary": False,
        }
        self._applied(self.view.update_artifact(event, changes, tracking), tracking)

    @process_event.register(ArtifactErased)
    def _erased(self, event: ArtifactErased, tracking: Tracking) -> None:
        # The row goes (its filename is personal data); the event keeps who and when.
        self._applied(self.view.remove_artifact(event, tracking), tracking)

    @staticmethod
    def _applied(applied: bool, tracking: Tracking) -> None:
        if not applied:
            log.info("read_model_event_already_applied", position=tracking.notification_id)
