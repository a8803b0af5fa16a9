"""Retention: ``EraseExpiredArtifactsWorkflow`` erases the artifacts older than
``RETENTION_DAYS``, run by a Temporal Schedule every ``RETENTION_SWEEP_SECONDS``
(``schedule.py``), as the reconciler is.

Each erasure goes through the same path as ``DELETE /artifacts/{id}`` (``application.
erasure.Eraser``), recorded as by ``retention`` with reason ``retention``; an artifact
whose run is still in flight has it cancelled and is erased when it stops. The candidates
come from the read model (every tenant's, oldest first); the erasure itself reads and
writes the event store, so a read model that lags only delays one.

The workflow is deterministic: its cutoff comes from ``workflow.now()``; it erases page by
page, one bounded activity per page, until a page erases nothing new (what is left is
waiting for its run to stop, or younger than the cutoff), at most ``max_batches`` pages a
run: the next tick goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from application.erasure import RETENTION, Eraser, Erasure

ERASE_EXPIRED = "erase_expired_artifacts"
BATCH_TIMEOUT = timedelta(minutes=5)
BATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)


@dataclass(frozen=True)
class RetentionInput:
    days: float
    batch_size: int = 100
    max_batches: int = 50


@dataclass(frozen=True)
class ExpiredBatch:
    """Erase up to ``limit`` artifacts created before ``cutoff``."""

    cutoff: datetime
    limit: int


@dataclass(frozen=True)
class ExpiredErased:
    examined: int
    erased: int
    pending: int


@dataclass(frozen=True)
class RetentionSummary:
    """The workflow's result, as shown in the Temporal UI."""

    erased: int = 0
    pending: int = 0


@workflow.defn(name="EraseExpiredArtifactsWorkflow")
class EraseExpiredArtifactsWorkflow:
    @workflow.run
    async def run(self, start: RetentionInput) -> RetentionSummary:
        cutoff = workflow.now() - timedelta(days=start.days)
        erased = pending = 0
        for _ in range(start.max_batches):
            batch = await workflow.execute_activity(
                ERASE_EXPIRED,
                ExpiredBatch(cutoff=cutoff, limit=start.batch_size),
                result_type=ExpiredErased,
                start_to_close_timeout=BATCH_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=60),
                retry_policy=BATCH_RETRY,
                summary=f"erase artifacts created before {cutoff.isoformat(timespec='seconds')}",
            )
            erased += batch.erased
            pending = batch.pending
            if batch.erased == 0 or batch.examined < start.batch_size:
                break
        if erased:
            workflow.logger.info("artifacts_expired", extra={"erased": erased})
        return RetentionSummary(erased=erased, pending=pending)


class ExpiredArtifacts(Protocol):
    """What retention reads of the read model (``ArtifactCatalog.created_before``)."""

    def created_before(self, cutoff: datetime, limit: int) -> list[UUID]: ...


class ArtifactRetention:
    """The retention activity: erases the expired artifacts of one page of the read model."""

    def __init__(self, catalog: ExpiredArtifacts, eraser: Eraser) -> None:
        self._catalog = catalog
        self._eraser = eraser

    @activity.defn(name=ERASE_EXPIRED)
    def erase_expired(self, batch: ExpiredBatch) -> ExpiredErased:
        ids = self._catalog.created_before(batch.cutoff, batch.limit)
        erased = pending = 0
        for artifact_id in ids:
            outcome = self._eraser.erase(artifact_id, by=RETENTION, reason="retention")
            # (ALREADY: erased since the read model listed it; it drops the row soon.)
            if outcome is Erasure.PENDING:
                pending += 1
            elif outcome is Erasure.ERASED:
                erased += 1
            activity.heartbeat(erased + pending)
        return ExpiredErased(examined=len(ids), erased=erased, pending=pending)

    def all(self) -> list[Callable[..., object]]:
        return [self.erase_expired]
