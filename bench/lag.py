"""Scenario "lag": from an accepted upload to its workflow run's start, at a steady rate.

The real API and the real pipeline worker run as processes (no Temporal worker: the runs
stay open, which is all that is measured). Uploads go in at ``RATE`` per second; each lag
is the run's start time in Temporal minus the moment the API's 202 arrived, on one clock.
There is no baseline process: the bound is the target (on SQLite the worker polls, so one
poll interval plus 100 ms; on PostgreSQL, which notifies, 100 ms).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from temporalio.client import Client

from bench import plots
from bench.ingest import FILE
from bench.report import Result, p99, under_bound
from domain.artifact import workflow_id_for
from tests.support import Process, free_port, fresh_settings, running, service_env, wait_until

RATE = 20


async def run(client: Client, root: Path, store: str, *, seconds: float) -> Result:
    api_port = free_port()
    with fresh_settings(
        root,
        store,
        temporal_address=client.service_client.config.target_host,
        task_queue=f"bench-{uuid.uuid4().hex[:8]}",
    ) as settings:
        env = service_env(settings, API_HOST="127.0.0.1", API_PORT=str(api_port))
        api = Process.service("api", env=env, log_path=root / "lag-api.log")
        worker = Process.service("pipeline_worker", env=env, log_path=root / "lag-worker.log")
        with running(api), running(worker):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
                await wait_until(lambda: _answers(http), timeout=60, what="the API answers")
                await wait_until(
                    lambda: "pipeline_worker_subscribed" in worker.output(),
                    timeout=60,
                    what="the pipeline worker subscribes",
                )
                accepted = await _upload_steadily(http, seconds=seconds)
            lags = [await _lag(client, artifact_id, at) for artifact_id, at in accepted.items()]
        bound = (settings.sqlite_poll_interval if store == "sqlite" else 0) * 1000 + 100
    plots.record("lag", store, lags)
    return under_bound(
        f"lag p99 ({store})",
        p99(lags),
        "ms",
        bound,
        note=f"{RATE} uploads/s for {seconds:g} s ({len(lags)}); "
        f"p50 {statistics.median(lags):.0f} ms",
    )


async def _answers(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/health")).status_code == 200
    except httpx.HTTPError:
        return False


async def _upload_steadily(http: httpx.AsyncClient, *, seconds: float) -> dict[uuid.UUID, float]:
    """Starts one upload every 1/RATE s (not waiting for the last); returns when each was
    accepted (wall clock, as Temporal's start times are)."""
    accepted: dict[uuid.UUID, float] = {}

    async def upload() -> None:
        response = await http.post(
            "/artifacts", files={"file": ("bench.bin", FILE, "application/octet-stream")}
        )
        response.raise_for_status()
        accepted[uuid.UUID(response.json()["id"])] = time.time()

    tasks = []
    started = time.perf_counter()
    for i in range(int(seconds * RATE)):
        await asyncio.sleep(max(0.0, started + i / RATE - time.perf_counter()))
        tasks.append(asyncio.create_task(upload()))
    await asyncio.gather(*tasks)
    return accepted


async def _lag(client: Client, artifact_id: uuid.UUID, accepted_at: float) -> float:
    """Milliseconds from the upload's acceptance to its run's start (waits for the run)."""
    handle = client.get_workflow_handle(workflow_id_for(artifact_id))
    deadline = time.monotonic() + 60
    while True:
        try:
            started: datetime = (await handle.describe()).start_time
            break
        except Exception:  # not started yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    return (started.astimezone(UTC).timestamp() - accepted_at) * 1000
