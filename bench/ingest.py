"""Scenario "ingest": uploads per second through the real API against a bare FastAPI upload.

Project: ``python -m infrastructure.api`` on a free port (hashing, MIME sniffing, the blob
store, ``ArtifactCreated`` in the event store). Baseline: ``bench.bare_upload``, which only
streams the file to disk, under the same uvicorn. Both are loaded by the same 32 concurrent
httpx clients posting 10 KB files, for a bounded time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx

from bench.report import Result, result
from tests.support import (
    Process,
    free_port,
    fresh_settings,
    running,
    seaweedfs,
    service_env,
    wait_until,
)

CLIENTS = 32
FILE = os.urandom(10 * 1024)


async def run(
    temporal_address: str, root: Path, store: str, *, seconds: float, rounds: int
) -> Result:
    api_port, bare_port = free_port(), free_port()
    uploads = root / "bare-uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    with fresh_settings(
        root, store, temporal_address=temporal_address, task_queue="bench-ingest"
    ) as settings:
        env = service_env(settings, API_HOST="127.0.0.1", API_PORT=str(api_port))
        api = Process.service("api", env=env, log_path=root / f"api-{store}.log")
        bare = Process(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.bare_upload:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
            ],
            env={**os.environ, "BENCH_UPLOAD_DIR": str(uploads)},
            log_path=root / "bare.log",
        )
        with running(api), running(bare):
            await wait_until(lambda: answers(api_port), timeout=60, what="the API answers")
            await wait_until(lambda: answers(bare_port), timeout=60, what="the bare app answers")
            measured = await alternate(api_port, bare_port, rounds=rounds, seconds=seconds)
    return result(
        f"ingest ({store})",
        "uploads/s",
        measured,
        target=0.7 if store == "sqlite" else 0.4,
        note=f"{CLIENTS} clients, 10 KB files, {seconds:g} s per round",
    )


async def alternate(
    project_port: int, baseline_port: int, *, rounds: int, seconds: float
) -> list[tuple[float, float]]:
    """Uploads/s of each side, round by round, the two sides taking turns, after a round of
    each that is not counted: the first uploads pay for what a running service has already
    paid for (connection pools, imports on first use, and on SeaweedFS the volumes a new
    bucket grows on its first writes)."""
    await load(project_port, seconds=seconds)
    await load(baseline_port, seconds=seconds)
    measured = []
    for _ in range(rounds):
        project = await load(project_port, seconds=seconds)
        baseline = await load(baseline_port, seconds=seconds)
        measured.append((project, baseline))
    return measured


async def run_s3(
    temporal_address: str, root: Path, store: str, *, seconds: float, rounds: int
) -> Result:
    """The variant "ingest on S3": the same API with ``BLOB_STORE=s3`` on SeaweedFS against
    itself on the local blob directory, side by side in each round."""
    local_port, s3_port = free_port(), free_port()
    queue = "bench-ingest-s3"
    with (
        seaweedfs(root / "seaweedfs") as server,
        fresh_settings(root, store, temporal_address=temporal_address, task_queue=queue) as a,
        fresh_settings(root, store, temporal_address=temporal_address, task_queue=queue) as b,
    ):
        local = Process.service(
            "api",
            env=service_env(a, API_HOST="127.0.0.1", API_PORT=str(local_port)),
            log_path=root / f"api-local-{store}.log",
        )
        s3 = Process.service(
            "api",
            env=service_env(server.settings(b), API_HOST="127.0.0.1", API_PORT=str(s3_port)),
            log_path=root / f"api-s3-{store}.log",
        )
        with running(local), running(s3):
            await wait_until(lambda: answers(local_port), timeout=60, what="the API answers")
            await wait_until(lambda: answers(s3_port), timeout=60, what="the S3 API answers")
            measured = await alternate(s3_port, local_port, rounds=rounds, seconds=seconds)
    return result(
        f"ingest on S3 vs local ({store})",
        "uploads/s",
        measured,
        target=0.6,
        note=f"SeaweedFS on this host; {CLIENTS} clients, 10 KB files, {seconds:g} s per round",
    )


async def answers(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/health")
    except httpx.HTTPError:
        return False
    # The bare app has no /health: any HTTP answer means it is up.
    return response.status_code in (200, 404)


async def load(port: int, *, seconds: float) -> float:
    """Successful uploads per second from ``CLIENTS`` clients posting for ``seconds``."""
    done = 0
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
    ) as http:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                response = await http.post(
                    "/artifacts", files={"file": ("bench.bin", FILE, "application/octet-stream")}
                )
                response.raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    return done / elapsed
