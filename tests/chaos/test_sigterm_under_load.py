"""4. SIGTERM to every worker under load: each exits 0 within its grace period, and once
restarted no run stays stuck: every artifact reaches ``processed``.

The API is left running: uvicorn re-raises the SIGTERM it handled once it has shut down
gracefully, so its exit status is -15 by design, not 0.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from infrastructure.config import Settings
from tests.chaos.stack import (
    SMALL,
    figures,
    running_stack,
    runs_per_workflow,
    upload_many,
    wait_all_processed,
)

UPLOADS = 40 if SMALL else 200
WORKERS = ("pipeline_worker", "temporal_worker")
# The Temporal worker's is SHUTDOWN_GRACE_SECONDS (20 s by default), uvicorn's 10 s; the
# pipeline worker stops between starts. A margin on top, for a busy machine.
GRACE = {"pipeline_worker": 15.0, "temporal_worker": 30.0}


async def test_sigterm_to_every_process_under_load_exits_0_and_leaves_no_run_stuck(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    async with running_stack(settings, client, tmp_path) as stack:
        ids = await upload_many(stack.api_url, UPLOADS)
        stopping = time.monotonic()
        for name in WORKERS:
            stack.processes[name].send(signal.SIGTERM)
        codes = await asyncio.gather(
            *(stack.processes[n].wait_for_exit(timeout=GRACE[n]) for n in WORKERS)
        )
        stopped = time.monotonic() - stopping
        for name in WORKERS:
            stack.start(name)
        restarted = time.monotonic()
        await wait_all_processed(settings, ids, timeout=300)
        recovery = time.monotonic() - restarted
        runs = await runs_per_workflow(client, stack.task_queue)

    result = figures("4-sigterm-under-load", settings, ids, runs, len(ids), recovery)
    result.extra = f"exit_codes={dict(zip(WORKERS, codes, strict=True))} stopped_in={stopped:.1f}s"
    result.print()
    assert codes == [0, 0]
    assert result.runs == len(ids)
    assert result.duplicates == 0
