"""3. ``kill -9`` the Temporal worker that is extracting a PDF while a second worker runs:
Temporal notices the silence within the extract activity's heartbeat timeout, retries it
on the survivor (which resumes after the last page batch the first one heartbeat), and
every artifact is processed, one run each.

The PDFs are long enough (thousands of pages of dense text) for extraction to be caught
under way; the worker to kill is the one Temporal names as running it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import psutil
from temporalio.testing import WorkflowEnvironment

from domain.artifact import workflow_id_for
from infrastructure.config import Settings
from infrastructure.temporal.models import EXTRACT_CONTENT
from infrastructure.temporal.workflows import HEARTBEAT_TIMEOUT
from tests import corpus
from tests.chaos.stack import (
    SMALL,
    figures,
    running_stack,
    runs_per_workflow,
    upload_file,
    wait_all_processed,
)
from tests.support import last_attempt, pid_of, running_on, wait_until

PDFS = 2 if SMALL else 4
PAGES = 2000
WORKERS = ("temporal_worker", "temporal_worker_2")


async def test_kill_9_the_worker_extracting_a_pdf_and_the_other_worker_finishes_it(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    overrides = {"PDF_MAX_PAGES": str(PAGES)}
    async with running_stack(settings, client, tmp_path, overrides=overrides) as stack:
        stack.modules[WORKERS[1]] = stack.modules[WORKERS[0]]
        stack.start(WORKERS[1])
        await wait_until(
            lambda: all("temporal_worker_started" in stack.processes[n].output() for n in WORKERS),
            timeout=60,
            what="both Temporal workers poll",
            interval=0.2,
        )
        pdf = await asyncio.to_thread(long_pdf)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
            # A comment after %%EOF makes each upload new bytes: the API answers bytes it
            # already has with the artifact it made of them.
            ids = [
                await upload_file(http, f"long-{i}.pdf", pdf + f"%{uuid.uuid4()}\n".encode())
                for i in range(PDFS)
            ]
        running: list[tuple[str, str]] = []

        async def extracting() -> bool:
            for workflow_id in map(workflow_id_for, ids):
                if identity := await running_on(client, workflow_id, EXTRACT_CONTENT):
                    running.append((workflow_id, identity))
                    return True
            return False

        await wait_until(extracting, timeout=300, what="a PDF is being extracted", interval=0.2)
        workflow_id, identity = running[0]
        victim = next(n for n in WORKERS if stack.processes[n].pid == pid_of(identity))
        survivor = stack.processes[next(n for n in WORKERS if n != victim)]
        parsers = stack.processes[victim].descendants()
        killed_at, killed_wall = time.monotonic(), time.time()
        stack.kill9(victim)
        await wait_all_processed(settings, ids, timeout=600)
        kill_to_done = time.monotonic() - killed_at
        runs = await runs_per_workflow(client, stack.task_queue)
        retry = await last_attempt(client, workflow_id, EXTRACT_CONTENT)
        survivor_alive = survivor.exit_code is None
        # The parser child is in a session of its own, so the kill does not reach it; it
        # dies with its worker (PR_SET_PDEATHSIG) rather than parse on for nobody.
        await wait_until(
            lambda: not any(map(_alive, parsers)),
            timeout=60,
            what="the killed worker's parser process ends",
        )

    result = figures("3-kill9-temporal-worker", settings, ids, runs, len(ids), kill_to_done)
    retried_after = retry.ended_at - retry.seconds - killed_wall
    result.extra = (
        f"pdf_pages={PAGES} parsers_at_kill={len(parsers)} retry_attempt={retry.attempt} "
        f"retry_started_after={retried_after:.1f}s "
        f"heartbeat_timeout={HEARTBEAT_TIMEOUT.total_seconds():.0f}s "
        f"retried_extraction={retry.seconds:.1f}s"
    )
    result.print()
    assert retry.attempt == 2
    assert retry.outcome == "completed"
    assert pid_of(retry.identity) == survivor.pid
    assert survivor_alive
    assert result.runs == len(ids)
    assert result.duplicates == 0
    assert result.lost == 0


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def long_pdf() -> bytes:
    return corpus.long_pdf(PAGES)
