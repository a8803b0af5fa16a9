"""2. The Temporal server goes down for 30 s (10 s small) while a backlog is being processed,
then comes back on the same port and database file: the API kept accepting uploads all
along (they land in the event store, not in Temporal), the backlog and those uploads
drain, every artifact gets exactly one run, none is lost.

The server is ``kill -9``-ed, as a crash takes it; the pipeline worker retries the starts
it could not make and records its position only once a start is made, and the Temporal
workers poll again once the server answers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from uuid import UUID

import httpx
from temporalio.client import Client

from domain.artifact import ArtifactStatus
from infrastructure.config import Settings
from tests.chaos.stack import (
    SMALL,
    figures,
    reader,
    running_stack,
    runs_per_workflow,
    statuses,
    upload,
    upload_many,
    wait_all_processed,
)
from tests.chaos.temporal_server import own_temporal_server
from tests.support import wait_until

UPLOADS = 30 if SMALL else 150
OUTAGE_SECONDS = 10.0 if SMALL else 30.0


async def test_temporal_down_for_a_while_during_a_backlog_loses_and_repeats_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    async with own_temporal_server(tmp_path) as server:
        client = await Client.connect(server.address)
        async with running_stack(settings, client, tmp_path) as stack:
            backlog = await upload_many(stack.api_url, UPLOADS)

            # Down once runs are under way: some done, the rest started or waiting.
            async def under_way() -> bool:
                return await _processed(settings, backlog) > 0

            await wait_until(under_way, timeout=120, what="the backlog is under way", interval=0.5)
            await server.kill()
            down_at = time.monotonic()
            done_before = await _processed(settings, backlog)
            during, refused = await _upload_until(stack.api_url, down_at + OUTAGE_SECONDS)
            await server.start()
            restarted = time.monotonic()
            ids = backlog + during
            await wait_all_processed(settings, ids, timeout=600)
            recovery = time.monotonic() - restarted
            workers_alive = all(p.exit_code is None for p in stack.processes.values())
            # A client of the restarted server: the first one's connection went with it.
            runs = await runs_per_workflow(await Client.connect(server.address), stack.task_queue)

    result = figures("2-temporal-down", settings, ids, runs, len(ids), recovery)
    result.extra = (
        f"outage={restarted - down_at:.1f}s processed_before_outage={done_before} "
        f"uploads_during_outage={len(during)} refused_during_outage={refused} "
        f"processes_alive={workers_alive}"
    )
    result.print()
    assert during, "no upload was made while Temporal was down"
    assert refused == 0
    assert done_before < UPLOADS, "the backlog had drained before the outage"
    assert workers_alive
    assert result.runs == len(ids)
    assert result.duplicates == 0
    assert result.lost == 0


async def _upload_until(api_url: str, deadline: float) -> tuple[list[UUID], int]:
    """Uploads one file after another until ``deadline``: the accepted ids, how many failed."""
    ids: list[UUID] = []
    refused = 0
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        while time.monotonic() < deadline:
            try:
                ids.append(await upload(http, len(ids) + refused))
            except (AssertionError, httpx.HTTPError):
                refused += 1
            await asyncio.sleep(0.1)
    return ids, refused


async def _processed(settings: Settings, ids: list[UUID]) -> int:
    """How many of ``ids`` are processed now."""
    app = await asyncio.to_thread(reader, settings)
    try:
        found = await asyncio.to_thread(statuses, app, ids)
    finally:
        app.close()
    return found[ArtifactStatus.PROCESSED]
