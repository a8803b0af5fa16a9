"""13. Runs terminated from outside (the Temporal UI or CLI), some before extraction, some
in the middle of it: the reconciler records ``run_terminated`` on each within 60 s, and each
then reprocesses to ``processed``."""

from __future__ import annotations

import asyncio
import time
import uuid
from functools import partial
from pathlib import Path
from uuid import UUID

import httpx
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.artifact import workflow_id_for
from infrastructure.config import Settings
from infrastructure.temporal.models import EXTRACT_CONTENT
from tests.chaos.reconciling import (
    BOUND_SECONDS,
    PAGES,
    RECONCILE,
    long_pdf,
    outcomes,
    processing_runs,
    start_read_worker,
    wait_terminal,
)
from tests.chaos.stack import (
    SMALL,
    figures,
    running_stack,
    runs_per_workflow,
    upload_file,
    wait_all_processed,
)
from tests.support import running_on, wait_until

RUNS = 5 if SMALL else 20
# These are terminated as soon as their run exists; the others once they extract.
EARLY = 2 if SMALL else 8


async def test_runs_terminated_from_outside_get_an_outcome_and_reprocess(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    overrides = {**RECONCILE, "PDF_MAX_PAGES": str(PAGES)}
    async with running_stack(settings, client, tmp_path, overrides=overrides) as stack:
        start_read_worker(stack)
        pdf = await asyncio.to_thread(long_pdf)
        terminated_at: dict[UUID, float] = {}
        mid_extraction = 0
        async with httpx.AsyncClient(
            base_url=stack.api_url, timeout=60, headers=stack.api_headers
        ) as http:
            ids = [
                await upload_file(http, f"long-{i}.pdf", pdf + f"%{uuid.uuid4()}\n".encode())
                for i in range(RUNS)
            ]

            async def terminate(artifact_id: UUID, *, extracting: bool) -> bool:
                nonlocal mid_extraction
                workflow_id = workflow_id_for(artifact_id)
                try:
                    if extracting:
                        if not await running_on(client, workflow_id, EXTRACT_CONTENT):
                            return False
                        mid_extraction += 1
                    await client.get_workflow_handle(workflow_id).terminate(reason="chaos")
                except RPCError:
                    return False  # not started yet
                terminated_at[artifact_id] = time.monotonic()
                return True

            for i, artifact_id in enumerate(ids):
                await wait_until(
                    partial(terminate, artifact_id, extracting=i >= EARLY),
                    timeout=300,
                    what=f"run {i} terminated",
                    interval=0.1,
                )
            took = await wait_terminal(settings, terminated_at, timeout=BOUND_SECONDS + 30)
            reconciled = await asyncio.to_thread(outcomes, settings, ids)

            started = time.monotonic()
            for artifact_id in ids:
                response = await http.post(f"/artifacts/{artifact_id}/reprocess")
                assert response.status_code == 202, response.text
            await wait_all_processed(settings, ids, timeout=600)
            reprocessed_in = time.monotonic() - started
        runs = await runs_per_workflow(client, stack.task_queue)
        reconciler_lines = stack.processes["temporal_worker"].output().count("artifact_reconciled")

    ours = processing_runs(runs, ids, last_run=1)
    result = figures("13-terminated", settings, ids, ours, len(ids), max(took.values()))
    result.extra = (
        f"terminated={len(terminated_at)} mid_extraction={mid_extraction} "
        f"slowest_to_terminal={max(took.values()):.1f}s bound={BOUND_SECONDS:.0f}s "
        f"reconciled={reconciled} reconciler_lines={reconciler_lines} "
        f"reprocessed_in={reprocessed_in:.1f}s"
    )
    result.print()
    assert reconciled == {"failed:run_terminated": RUNS}
    assert max(took.values()) < BOUND_SECONDS
    assert mid_extraction == RUNS - EARLY
    # One terminated run and one reprocessing run per artifact.
    assert result.runs == 2 * RUNS
    assert result.duplicates == 0
