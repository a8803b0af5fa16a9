"""The extract activity on one file, for tests that look at what it wrote: the real
``ArtifactActivities.extract_content`` (real parsers, real child processes, real OCR) run by
temporalio's ``ActivityEnvironment``, on an in-memory blob store."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from typing import Any

from temporalio.testing import ActivityEnvironment

from application.ports import ContentFacts
from infrastructure.processing.options import ProcessingOptions
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import Extraction
from tests.fakes import FakeBlobStore, FakeSummarizer, in_memory_artifacts


class WorkerLost(Exception):
    """Stands for the worker dying mid-activity."""


class ExtractionRun:
    """Runs the extract activity on files and reads back what it stored."""

    def __init__(self, options: ProcessingOptions | None = None) -> None:
        self.blobs = FakeBlobStore()
        self.activities = ArtifactActivities(
            in_memory_artifacts(), self.blobs, FakeSummarizer(), options or ProcessingOptions()
        )
        self.heartbeats: list[Any] = []

    def extract(
        self,
        content: bytes,
        mime_type: str,
        kind: str,
        *,
        resume_from: Any = None,
        lose_worker_at: Callable[[Any], bool] | None = None,
    ) -> ContentFacts:
        """``content`` extracted as the inspection would have named it (``kind``).

        ``resume_from``: the heartbeat details of an earlier attempt (this is attempt 2).
        ``lose_worker_at``: raises ``WorkerLost`` from the first heartbeat it is true of, as a
        worker dying there would end the attempt.
        """
        env = ActivityEnvironment()
        if resume_from is not None:
            env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[resume_from])

        def beat(*details: Any) -> None:
            self.heartbeats.extend(details)
            if lose_worker_at is not None and any(lose_worker_at(d) for d in details):
                raise WorkerLost

        env.on_heartbeat = beat
        self.heartbeats.clear()
        stored = self.blobs.put(content)
        job = Extraction(
            artifact_id=uuid.uuid4(),
            storage_location=stored.location,
            mime_type=mime_type,
            kind=kind,
        )
        return env.run(self.activities.extract_content, job)

    def text(self, facts: ContentFacts) -> str:
        return self._read(facts.text_locations)

    def markdown(self, facts: ContentFacts) -> str:
        return self._read([facts.markdown_location or ""])

    def pages(self, facts: ContentFacts) -> list[dict[str, Any]]:
        """The page facts: number, source, confidence, chars."""
        pages: list[dict[str, Any]] = json.loads(self._read([facts.pages_location or ""]))
        return pages

    def _read(self, locations: list[str]) -> str:
        return b"".join(self.blobs.blobs[location] for location in locations).decode("utf-8")
