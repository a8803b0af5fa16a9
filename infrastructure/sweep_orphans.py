"""Deletes blobs that no artifact references: ``python -m infrastructure.sweep_orphans``.

An upload writes its blob (fsync, atomic rename) before it saves ``ArtifactCreated``, so a
crash between the two, a rejected request, or an idempotent retry that lost its race
leaves a blob nobody references; a crash mid-write leaves a file in ``blobs/tmp``. This
command finds both and deletes them (``--dry-run``: only lists them).

Referenced are the locations named by every ``ArtifactCreated`` (the uploads) and every
``ArtifactProcessed`` (the extracted text, of every run) in the event store's whole
notification log, read in pages. Only files older than the grace period are swept: an
upload in flight has a young blob and no event yet, and so does the text of a workflow
still running. The grace must exceed the longest processing run (text blobs are written
before ``ArtifactProcessed``); the default is an hour.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eventsourcing.utils import get_topic

from application.artifacts import ArtifactsApplication
from domain.artifact import ArtifactCreated, ArtifactProcessed

DEFAULT_GRACE_SECONDS = 3600
PAGE = 500
_BLOB = re.compile(r"[0-9a-f]{2}/[0-9a-f]{32}")
_TOPICS = [get_topic(ArtifactCreated), get_topic(ArtifactProcessed)]


@dataclass
class SweepReport:
    referenced: int = 0
    orphans: list[Path] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)
    bytes: int = 0
    deleted: bool = False

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
    blob_root: Path

    def __call__(self, *, older_than: float, dry_run: bool) -> SweepReport:
        """Sweeps (see ``sweep_orphans``), then closes the application."""
        try:
            return sweep_orphans(
                self.artifacts, self.blob_root, older_than=older_than, dry_run=dry_run
            )
        finally:
            self.artifacts.close()


def referenced_locations(artifacts: ArtifactsApplication, page_size: int = PAGE) -> set[str]:
    """Every blob location an ``ArtifactCreated`` or ``ArtifactProcessed`` names."""
    locations: set[str] = set()
    start: int | None = None
    while True:
        page = artifacts.recorder.select_notifications(
            start=start, limit=page_size, topics=_TOPICS, inclusive_of_start=start is None
        )
        for notification in page:
            event = artifacts.mapper.to_domain_event(notification)
            if isinstance(event, ArtifactCreated):
                locations.add(event.storage_location)
            elif isinstance(event, ArtifactProcessed):
                locations.update(event.text_locations)
        if len(page) < page_size:
            return locations
        start = page[-1].id


def sweep_orphans(
    artifacts: ArtifactsApplication,
    blob_root: Path,
    *,
    older_than: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    now: float | None = None,
    page_size: int = PAGE,
) -> SweepReport:
    """Finds (and unless ``dry_run`` deletes) unreferenced blobs and stale temp files."""
    # Events first, files second: a blob whose event is saved after this read is younger
    # than the grace period (see above), so it is never mistaken for an orphan.
    referenced = referenced_locations(artifacts, page_size)
    cutoff = (time.time() if now is None else now) - older_than
    report = SweepReport(referenced=len(referenced))
    for path, location in _blob_files(blob_root):
        if location not in referenced and _older(path, cutoff):
            report.orphans.append(path)
    tmp = blob_root / "tmp"
    if tmp.is_dir():
        report.temp_files = sorted(p for p in tmp.iterdir() if p.is_file() and _older(p, cutoff))
    for path in [*report.orphans, *report.temp_files]:
        try:
            report.bytes += path.stat().st_size
            if not dry_run:
                path.unlink()
        except FileNotFoundError:
            pass  # gone meanwhile (another sweep, an aborted upload cleaning up)
    report.deleted = not dry_run
    return report


def _blob_files(blob_root: Path) -> Iterator[tuple[Path, str]]:
    """The blobs under ``blob_root``, by location; anything else there is left alone."""
    if not blob_root.is_dir():
        return
    for directory in sorted(blob_root.iterdir()):
        if directory.name == "tmp" or not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            location = f"{directory.name}/{path.name}"
            if _BLOB.fullmatch(location) and path.is_file():
                yield path, location


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


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
        "uploads and running workflows are never swept)",
    )
    args = parser.parse_args(argv)
    if args.older_than < 0:
        parser.error("--older-than must not be negative")

    # Imported here: the composition root imports this module.
    from infrastructure.di.container import orphan_sweep

    report = orphan_sweep()(older_than=args.older_than, dry_run=args.dry_run)
    for path in [*report.orphans, *report.temp_files]:
        print(("deleted " if report.deleted else "orphan ") + str(path))
    print(report.summary())


if __name__ == "__main__":
    main()
