"""15. The orphan sweep, with a zero grace period, run again and again while PDFs are being
extracted: it deletes a real orphan, and not one blob of a run still open (the text pages
written before ``ArtifactProcessed`` names them, the writes under way); every run then
ends ``processed`` with all its text readable."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from domain.artifact import workflow_id_for
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.di.container import orphan_sweep
from infrastructure.temporal.models import EXTRACT_CONTENT
from tests.chaos.reconciling import PAGES, long_pdf, processing_runs
from tests.chaos.stack import (
    SMALL,
    figures,
    reader,
    running_stack,
    runs_per_workflow,
    upload_file,
    wait_all_processed,
)
from tests.support import running_on, wait_until

PDFS = 3 if SMALL else 10


async def test_the_sweep_never_deletes_a_blob_of_a_run_in_flight(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    overrides = {"PDF_MAX_PAGES": str(PAGES)}
    async with running_stack(settings, client, tmp_path, overrides=overrides) as stack:
        blobs = LocalBlobStore(settings.blob_dir)
        orphan = blobs.writer()
        orphan.write(b"nobody's")
        orphan_location = orphan.commit().location
        two_hours_ago = time.time() - 7200
        os.utime(settings.blob_dir / orphan_location, (two_hours_ago, two_hours_ago))

        pdf = await asyncio.to_thread(long_pdf)
        async with httpx.AsyncClient(
            base_url=stack.api_url, timeout=60, headers=stack.api_headers
        ) as http:
            ids = [
                await upload_file(http, f"long-{i}.pdf", pdf + f"%{uuid.uuid4()}\n".encode())
                for i in range(PDFS)
            ]

        async def extracting() -> bool:
            for artifact_id in ids:
                if await running_on(client, workflow_id_for(artifact_id), EXTRACT_CONTENT):
                    return True
            return False

        await wait_until(extracting, timeout=300, what="a PDF is being extracted", interval=0.2)
        sweeps, deleted = 0, []
        started = time.monotonic()
        done = asyncio.create_task(wait_all_processed(settings, ids, timeout=600))
        while not done.done():
            report = await asyncio.to_thread(orphan_sweep(settings), older_than=0, dry_run=False)
            sweeps += 1
            deleted += [*report.orphans, *report.temp_files]
            await asyncio.sleep(0.2)
        await done
        took = time.monotonic() - started
        runs = await runs_per_workflow(client, stack.task_queue)

    app = await asyncio.to_thread(reader, settings)
    try:
        texts = [loc for i in ids for loc in app.get_artifact(i).text_locations]
    finally:
        app.close()
    missing = [loc for loc in texts if not (settings.blob_dir / loc).exists()]
    result = figures(
        "15-sweep-in-flight", settings, ids, processing_runs(runs, ids), len(ids), took
    )
    result.extra = (
        f"sweeps={sweeps} deleted={len(deleted)} text_blobs={len(texts)} "
        f"missing_text_blobs={len(missing)}"
    )
    result.print()
    assert deleted == [orphan_location]
    assert not (settings.blob_dir / orphan_location).exists()
    assert texts
    assert missing == []
    assert result.duplicates == 0
