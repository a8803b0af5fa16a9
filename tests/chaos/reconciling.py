"""What the reconciliation scenarios (13-15) share: a stack that reconciles every few
seconds, long PDFs to catch runs under way, and waiting for terminal outcomes."""

# Deadlines are parameters, as in tests/support/launch.py (ASYNC109).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import time
from collections import Counter
from uuid import UUID

from domain.artifact import TERMINAL_STATUSES, Artifact, workflow_id_for
from infrastructure.config import Settings
from tests import corpus
from tests.chaos.stack import Stack, reader
from tests.support import PROCESSES, wait_until

# The reconciler's interval in these scenarios: short, so that they are; the bound they
# check (60 s) is the one the default (15 s) meets.
RECONCILE = {"RECONCILE_INTERVAL_SECONDS": "2", "RECONCILE_REDRIVE_AFTER_SECONDS": "5"}
BOUND_SECONDS = 60.0
PAGES = 1500


def start_read_worker(stack: Stack) -> None:
    """The reconciler finds its candidates in the read model, which the read worker keeps."""
    stack.modules["read_worker"] = PROCESSES["read_worker"]
    stack.start("read_worker")


def long_pdf() -> bytes:
    return corpus.long_pdf(PAGES)


async def wait_terminal(
    settings: Settings, since: dict[UUID, float], *, timeout: float
) -> dict[UUID, float]:
    """Seconds from ``since[id]`` (a monotonic time) until each artifact had a terminal
    status, as its event stream says (polled every 0.25 s)."""
    app = await asyncio.to_thread(reader, settings)
    reached: dict[UUID, float] = {}

    def poll() -> None:
        for artifact_id, started in since.items():
            if artifact_id not in reached:
                artifact: Artifact = app.get_artifact(artifact_id)
                if artifact.status in TERMINAL_STATUSES:
                    reached[artifact_id] = time.monotonic() - started

    async def all_terminal() -> bool:
        await asyncio.to_thread(poll)
        return len(reached) == len(since)

    try:
        await wait_until(
            all_terminal, timeout=timeout, what="every artifact terminal", interval=0.25
        )
    finally:
        app.close()
    return reached


def outcomes(settings: Settings, ids: list[UUID]) -> dict[str, int]:
    """How many artifacts have each status (and reason, for failures and cancellations)."""
    app = reader(settings)
    try:
        found: dict[str, int] = {}
        for artifact_id in ids:
            artifact = app.get_artifact(artifact_id)
            key = artifact.status.value
            if artifact.failure_reason:
                key += f":{artifact.failure_reason}"
            found[key] = found.get(key, 0) + 1
        return found
    finally:
        app.close()


def processing_runs(runs: Counter[str], ids: list[UUID], *, last_run: int = 0) -> Counter[str]:
    """The runs of these artifacts' processing, without the reconciler's own workflows (the
    same task queue runs both)."""
    ours = {workflow_id_for(i, run) for i in ids for run in range(last_run + 1)}
    return Counter({k: n for k, n in runs.items() if k in ours})
