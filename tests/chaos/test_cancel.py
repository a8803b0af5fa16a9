"""12. Cancel PDFs mid-extraction through the API: every artifact ends ``cancelled``
within the heartbeat timeout, the Temporal worker lives on (same process), no parser child
is left running, and each cancelled artifact reprocessed ends ``processed``.

The cancellation travels as the product's does: the API records ``CancellationRequested``,
the pipeline worker asks Temporal to cancel the run, the extract activity hears of it in
the answer to a heartbeat, its parser child is killed, and the workflow records the
cancellation once the step has stopped.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from domain.artifact import ArtifactStatus, workflow_id_for
from infrastructure.config import Settings
from infrastructure.temporal.models import EXTRACT_CONTENT
from infrastructure.temporal.workflows import HEARTBEAT_TIMEOUT
from tests.chaos.stack import (
    SMALL,
    Figures,
    reader,
    running_stack,
    statuses,
    upload_file,
    wait_all_processed,
)
from tests.chaos.test_temporal_worker_kill import PAGES, long_pdf
from tests.support import running_on, wait_until

PDFS = 5 if SMALL else 20
WORKER = "temporal_worker"


async def test_pdfs_cancelled_mid_extraction_end_cancelled_and_the_worker_lives_on(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    # A thread per PDF, so that every one is extracting when the cancels arrive.
    overrides = {"PDF_MAX_PAGES": str(PAGES), "ACTIVITY_THREADS": str(PDFS)}
    app = await asyncio.to_thread(reader, settings)
    try:
        async with running_stack(settings, client, tmp_path, overrides=overrides) as stack:
            worker = stack.processes[WORKER]
            worker_pid = worker.pid
            pdf = await asyncio.to_thread(long_pdf)
            async with httpx.AsyncClient(
                base_url=stack.api_url, timeout=60, headers=stack.api_headers
            ) as http:
                # Distinct bytes each: the API answers bytes it has with their artifact.
                ids = [
                    await upload_file(http, f"long-{i}.pdf", pdf + f"%{uuid.uuid4()}\n".encode())
                    for i in range(PDFS)
                ]

                async def all_extracting() -> bool:
                    found = await asyncio.gather(
                        *(running_on(client, workflow_id_for(i), EXTRACT_CONTENT) for i in ids)
                    )
                    return all(found)

                await wait_until(
                    all_extracting, timeout=300, what="every PDF being extracted", interval=0.5
                )
                parsers_before = len(worker.parsers())
                cancelled_at = time.monotonic()
                answers = await asyncio.gather(*(http.post(f"/artifacts/{i}/cancel") for i in ids))
                assert [a.status_code for a in answers] == [202] * PDFS

                async def all_cancelled() -> bool:
                    found = await asyncio.to_thread(statuses, app, ids)
                    return found[ArtifactStatus.CANCELLED] == PDFS

                await wait_until(
                    all_cancelled, timeout=120, what="every PDF cancelled", interval=0.2
                )
                within = time.monotonic() - cancelled_at
                # The workflow records the cancellation only once the step has stopped,
                # and the step kills its child first: none may be left by now.
                children_left = len(worker.parsers())
                worker_alive = worker.exit_code is None and worker.pid == worker_pid
                reasons = {
                    (await asyncio.to_thread(app.get_artifact, i)).failure_reason for i in ids
                }

                # Cancelled is an outcome: each artifact can be processed again.
                for i in ids:
                    assert (await http.post(f"/artifacts/{i}/reprocess")).status_code == 202
            reprocessed_s = await wait_all_processed(settings, ids, timeout=900)
    finally:
        app.close()

    result = Figures(
        scenario="12-cancel",
        store=settings.event_store,
        uploads=PDFS,
        runs=2 * PDFS,
        duplicates=0,
        lost=0,
        recovery_s=within,
    )
    result.extra = (
        f"cancelled={PDFS} within_s={within:.1f} worker_alive={worker_alive} "
        f"children_left={children_left} parsers_at_cancel={parsers_before} "
        f"heartbeat_timeout={HEARTBEAT_TIMEOUT.total_seconds():.0f}s "
        f"reprocessed_in={reprocessed_s:.1f}s"
    )
    result.print()
    assert reasons == {"cancelled"}
    assert within < HEARTBEAT_TIMEOUT.total_seconds()
    assert worker_alive
    assert children_left == 0
