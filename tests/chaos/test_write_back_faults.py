"""5. The write-back activity fails after it has written, once per artifact: Temporal retries
it, and the aggregate still holds exactly one ``ArtifactProcessed`` per artifact (the
command is idempotent for the run it belongs to)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from domain.artifact import Artifact
from infrastructure.config import Settings
from tests.chaos.faulty_temporal_worker import FAULT
from tests.chaos.stack import (
    SMALL,
    figures,
    reader,
    running_stack,
    runs_per_workflow,
    upload_many,
    wait_all_processed,
)

UPLOADS = 20 if SMALL else 100


async def test_a_write_back_that_fails_after_writing_records_one_result_per_artifact(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    async with running_stack(
        settings, client, tmp_path, temporal_worker="tests.chaos.faulty_temporal_worker"
    ) as stack:
        started = time.monotonic()
        ids = await upload_many(stack.api_url, UPLOADS)
        await wait_all_processed(settings, ids, timeout=300)
        took = time.monotonic() - started
        runs = await runs_per_workflow(client, stack.task_queue)
        faults = stack.processes["temporal_worker"].output().count(f"{FAULT} ")

    app = await asyncio.to_thread(reader, settings)
    try:
        processed = {
            i: sum(
                isinstance(e, Artifact.ArtifactProcessed) for e in app.repository.event_store.get(i)
            )
            for i in ids
        }
    finally:
        app.close()
    result = figures("5-write-back-fails-after-writing", settings, ids, runs, len(ids), took)
    result.extra = f"faults={faults} result_events={sum(processed.values())}"
    result.print()
    assert faults == len(ids), "the fault did not fire once per artifact"
    assert set(processed.values()) == {1}, processed
    assert result.runs == len(ids)
    assert result.duplicates == 0
