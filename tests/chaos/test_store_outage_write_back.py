"""14. The event store refuses writes for longer than the record steps' retries, while runs
are extracting: their write-backs run out, the runs fail without an outcome, and once the
store is back the reconciler records one on each (``run_failed``); nothing is left
``uploaded`` or ``processing``.

The outage, on SQLite: the database's write lock held from another connection (``BEGIN
EXCLUSIVE``; reads go on, writes wait 30 s and fail); on PostgreSQL: the link between the
processes and the server cut (``TcpProxy``), so every connection fails. The worker runs
with the record steps' retries cut short (``short_write_back_worker``), so that a 45 s
outage outlasts them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.artifact import ArtifactStatus, workflow_id_for
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
    reader,
    running_stack,
    runs_per_workflow,
    statuses,
    upload_file,
)
from tests.support import TcpProxy, running_on, wait_until

PDFS = 3 if SMALL else 8
# Longer than a write's wait for the lock (30 s on SQLite, POSTGRES_LOCK_TIMEOUT below) plus
# the shortened retries, so every write-back during it fails for good.
OUTAGE_SECONDS = 45.0


@contextmanager
def writes_refused(settings: Settings, proxy: TcpProxy | None) -> Iterator[None]:
    """The event store refuses the processes' writes until the block ends."""
    if proxy is not None:
        proxy.cut()
        try:
            yield
        finally:
            proxy.restore()
        return
    lite = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    try:
        lite.execute("BEGIN EXCLUSIVE")
        yield
        lite.execute("ROLLBACK")
    finally:
        lite.close()


async def test_runs_whose_write_back_outlasts_its_retries_end_with_an_outcome(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    overrides = {**RECONCILE, "PDF_MAX_PAGES": str(PAGES)}
    proxy = TcpProxy(settings.postgres_port) if settings.event_store == "postgres" else None
    if proxy is not None:
        proxy.restore()
        overrides["POSTGRES_PORT"] = str(proxy.port)
    async with running_stack(
        settings,
        client,
        tmp_path,
        overrides=overrides,
        temporal_worker="tests.chaos.short_write_back_worker",
    ) as stack:
        start_read_worker(stack)
        pdf = await asyncio.to_thread(long_pdf)
        async with httpx.AsyncClient(
            base_url=stack.api_url, timeout=60, headers=stack.api_headers
        ) as http:
            ids = [
                await upload_file(http, f"long-{i}.pdf", pdf + f"%{uuid.uuid4()}\n".encode())
                for i in range(PDFS)
            ]
        app = await asyncio.to_thread(reader, settings)
        try:
            await wait_until(
                lambda: statuses(app, ids)[ArtifactStatus.PROCESSING] == len(ids),
                timeout=120,
                what="every run started",
                interval=0.2,
            )
        finally:
            app.close()

        async def extracting() -> bool:
            for artifact_id in ids:
                if await running_on(client, workflow_id_for(artifact_id), EXTRACT_CONTENT):
                    return True
            return False

        await wait_until(extracting, timeout=120, what="a PDF is being extracted", interval=0.2)

        async def a_run_closed() -> bool:
            for artifact_id in ids:
                description = await client.get_workflow_handle(
                    workflow_id_for(artifact_id)
                ).describe()
                if description.status != WorkflowExecutionStatus.RUNNING:
                    return True
            return False

        outage_started = time.monotonic()
        with writes_refused(settings, proxy):
            await asyncio.sleep(OUTAGE_SECONDS)
            # Until a write-back has run out of retries: with more PDFs than activity
            # threads, the first extraction may still be going when the 45 s are up.
            await wait_until(
                a_run_closed, timeout=300, what="a run closed during the outage", interval=1.0
            )
        store_back = time.monotonic()
        took = await wait_terminal(
            settings, dict.fromkeys(ids, store_back), timeout=BOUND_SECONDS + 30
        )
        ended = await asyncio.to_thread(outcomes, settings, ids)
        runs = await runs_per_workflow(client, stack.task_queue)
    if proxy is not None:
        proxy.close()

    result = figures(
        "14-store-outage-write-back",
        settings,
        ids,
        processing_runs(runs, ids),
        len(ids),
        max(took.values()),
    )
    result.extra = (
        f"outage={store_back - outage_started:.0f}s "
        f"terminal_after_store_back={max(took.values()):.1f}s "
        f"outcomes={ended}"
    )
    result.print()
    assert sum(ended.values()) == len(ids)
    assert ended.get("failed:run_failed", 0) >= 1, "no write-back outlasted its retries"
    assert max(took.values()) < BOUND_SECONDS
    assert result.duplicates == 0
