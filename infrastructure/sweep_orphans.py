"""Deletes blobs that no artifact references: ``python -m infrastructure.sweep_orphans``.

An upload writes its blob (fsync, atomic rename) before it saves ``ArtifactCreated``, so a
crash between the two, a rejected request, or an idempotent retry that lost its race
leaves a blob nobody references; a crash mid-write leaves a file in ``blobs/tmp``. This
command finds both and deletes them (``--dry-run``: only lists them).

Referenced are the locations named by every ``ArtifactCreated`` (the uploads) and every
``ArtifactProcessed`` (the extracted text, Markdown, chunks and page facts, of every run)
in the event store's whole notification log, read in pages. A PDF's page batches, kept
only for a retried extraction to resume from, are referenced by nothing: once their run
has closed they are orphans like any other. Only files older than the grace period are
swept: an upload in flight has a young blob and no event yet.

A run still in flight writes its text before ``ArtifactProcessed`` names it, so no grace
period alone could protect it. The same read of the log finds when each artifact's current
run was opened (``ArtifactCreated`` or ``ReprocessingRequested``) and whether it has an
outcome yet; nothing written at or after the earliest open run's opening (less a margin for
clocks) is ever swept, whatever the grace. Every run is bounded in time, and the reconciler
closes out runs that ended without an outcome, so this window does not stay open.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from eventsourcing.utils import get_topic

from application.artifacts import ArtifactsApplication
from application.ports import BlobStore
from domain.artifact import (
    ArtifactCreated,
    ArtifactProcessed,
    ArtifactProcessingFailed,
    ProcessingCancelled,
    ReprocessingRequested,
)

DEFAULT_GRACE_SECONDS = 3600
# Blob times come from the blob store's clock, event times from the writer's: allow for
# hosts whose clocks disagree by this much.
CLOCK_MARGIN_SECONDS = 60
PAGE = 500
_OPENS = (ArtifactCreated, ReprocessingRequested)
_CLOSES = (ArtifactProcessed, ArtifactProcessingFailed, ProcessingCancelled)
_TOPICS = [get_topic(t) for t in (*_OPENS, *_CLOSES)]


@dataclass
class SweepReport:
    referenced: int = 0
    orphans: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    bytes: int = 0
    deleted: bool = False
    # When the earliest run still open was opened (None: no run open); nothing written
    # since (less the clock margin) was swept.
    open_since: datetime | None = None

    def summary(self) -> str:
        verb = "deleted" if self.deleted else "would delete (dry run)"
        return (
            f"{self.referenced} blobs referenced; {verb} {len(self.orphans)} orphaned blobs "
            f"and {len(self.temp_files)} temporary files, {self.bytes} bytes"
        )


@dataclass(frozen=True)
class OrphanSweep:
    """One sweep of the configured stores (``python -m infrastructure.sweep_orphans``)."""

    artifacts: ArtifactsApplication
    blob_store: BlobStore

    def __call__(self, *, older_than: float, dry_run: bool) -> SweepReport:
        """Sweeps (see ``sweep_orphans``), then closes the application."""
        try:
            return sweep_orphans(
                self.artifacts, self.blob_store, older_than=older_than, dry_run=dry_run
            )
        finally:
            self.artifacts.close()


@dataclass
class EventLogFacts:
    """What the sweep learns from one read of the event log."""

    referenced: set[str] = field(default_factory=set)
    # Per artifact whose current run has no outcome yet: when that run was opened.
    open_runs: dict[UUID, datetime] = field(default_factory=dict)

    @property
    def open_since(self) -> datetime | None:
        return min(self.open_runs.values(), default=None)


def read_event_log(artifacts: ArtifactsApplication, page_size: int = PAGE) -> EventLogFacts:
    """Every blob location an ``ArtifactCreated`` or ``ArtifactProcessed`` names, and the
    runs still open (an artifact's events come in order, so its last opening or outcome
    event says whether its current run is open)."""
    facts = EventLogFacts()
    start: int | None = None
    while True:
        page = artifacts.recorder.select_notifications(
            start=start, limit=page_size, topics=_TOPICS, inclusive_of_start=start is None
        )
        for notification in page:
            event = artifacts.mapper.to_domain_event(notification)
            if isinstance(event, ArtifactCreated):
                facts.referenced.add(event.storage_location)
            elif isinstance(event, ArtifactProcessed):
                facts.referenced.update(event.text_locations)
                facts.referenced.update(
                    location
                    for location in (
                        event.markdown_location,
                        event.chunks_location,
                        event.pages_location,
                    )
                    if location is not None
                )
            if isinstance(event, _OPENS):
                facts.open_runs[event.originator_id] = event.timestamp
            elif isinstance(event, _CLOSES):
                facts.open_runs.pop(event.originator_id, None)
        if len(page) < page_size:
            return facts
        start = page[-1].id


def sweep_orphans(
    artifacts: ArtifactsApplication,
    blob_store: BlobStore,
    *,
    older_than: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    now: float | None = None,
    page_size: int = PAGE,
) -> SweepReport:
    """Finds (and unless ``dry_run`` deletes) unreferenced blobs and stale temp files."""
    # Events first, files second: a blob whose event is saved after this read is younger
    # than the grace period, or than the earliest run still open, so it is never mistaken
    # for an orphan.
    facts = read_event_log(artifacts, page_size)
    cutoff = (time.time() if now is None else now) - older_than
    open_since = facts.open_since
    if open_since is not None:
        cutoff = min(cutoff, open_since.timestamp() - CLOCK_MARGIN_SECONDS)
    report = SweepReport(referenced=len(facts.referenced), open_since=open_since)
    for entry in blob_store.entries():
        if entry.modified_at >= cutoff:
            continue
        if entry.temporary:
            report.temp_files.append(entry.location)
        elif entry.location not in facts.referenced:
            report.orphans.append(entry.location)
        else:
            continue
        report.bytes += entry.size
        if not dry_run:
            blob_store.delete(entry.location)
    report.deleted = not dry_run
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m infrastructure.sweep_orphans",
        description="Delete blobs no artifact references, and stale temporary files.",
    )
    parser.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    parser.add_argument(
        "--older-than",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        metavar="SECONDS",
        help=f"only files older than this (default {DEFAULT_GRACE_SECONDS}: in-flight "
        "uploads are not swept; nothing written since the earliest open run began ever is)",
    )
    args = parser.parse_args(argv)
    if args.older_than < 0:
        parser.error("--older-than must not be negative")

    # Imported here: the composition root imports this module.
    from infrastructure.di.container import orphan_sweep

    report = orphan_sweep()(older_than=args.older_than, dry_run=args.dry_run)
    for location in [*report.orphans, *report.temp_files]:
        print(("deleted " if report.deleted else "orphan ") + location)
    print(report.summary())


if __name__ == "__main__":
    main()
