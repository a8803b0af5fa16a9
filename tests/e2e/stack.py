"""The whole service as `make dev` runs it (honcho, the Procfile, free ports), for e2e tests."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from infrastructure.config import Settings
from tests.support import Process, free_port, service_env, wait_until

HONCHO = Path(sys.executable).parent / "honcho"


_METRICS = ("pipeline_worker_metrics", "read_worker_metrics", "temporal_worker_metrics")


@dataclass
class DevStack:
    process: Process
    api_url: str
    temporal_address: str
    ports: list[int]
    processes: list[psutil.Process]  # what honcho started, children included
    temporal_ui_url: str
    metrics_urls: list[str]  # the workers' Prometheus endpoints


def stack_env(settings: Settings, ports: dict[str, int]) -> dict[str, str]:
    """A developer's shell after ``make install`` with the test's stores and free ports.

    Everything else is left at the defaults `make dev` runs with.
    """
    venv_bin = Path(sys.executable).parent
    return service_env(
        settings,
        # `uv run` puts the environment's bin first: `python` and `temporal` come from it.
        PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(venv_bin.parent),
        SQLITE_POLL_INTERVAL=str(Settings.model_fields["sqlite_poll_interval"].default),
        TEMPORAL_PORT=str(ports["temporal"]),
        TEMPORAL_UI_PORT=str(ports["temporal_ui"]),
        TEMPORAL_ADDRESS=f"127.0.0.1:{ports['temporal']}",
        API_HOST="127.0.0.1",
        API_PORT=str(ports["api"]),
        TEMPORAL_UI_URL=f"http://127.0.0.1:{ports['temporal_ui']}",
        PIPELINE_WORKER_METRICS_PORT=str(ports["pipeline_worker_metrics"]),
        READ_WORKER_METRICS_PORT=str(ports["read_worker_metrics"]),
        TEMPORAL_WORKER_METRICS_ADDRESS=f"127.0.0.1:{ports['temporal_worker_metrics']}",
    )


@contextlib.asynccontextmanager
async def started_dev_stack(settings: Settings, tmp_path: Path) -> AsyncIterator[DevStack]:
    """`make dev` with ``settings``, healthy; everything it started is killed afterwards."""
    ports = {name: free_port() for name in ("temporal", "temporal_ui", "api", *_METRICS)}
    assert settings.data_dir.is_dir()  # `make dev` creates it before starting honcho
    process = Process(
        [str(HONCHO), "start", "-f", "Procfile"],
        env=stack_env(settings, ports),
        log_path=tmp_path / "honcho.log",
    )
    api_url = f"http://127.0.0.1:{ports['api']}"
    started: list[psutil.Process] = []
    try:
        async with httpx.AsyncClient(base_url=api_url, timeout=5) as http:
            took = await wait_until(
                lambda: healthy(http, process),
                timeout=60,
                what=f"GET /ready answers 200 (honcho log: {process.log_path})",
                interval=0.25,
            )
        started += process.descendants()
        print(f"\n[{settings.event_store}] dev stack healthy {took:.1f} s after `honcho start`")
        yield DevStack(
            process,
            api_url,
            f"127.0.0.1:{ports['temporal']}",
            list(ports.values()),
            started,
            temporal_ui_url=f"http://127.0.0.1:{ports['temporal_ui']}",
            metrics_urls=[f"http://127.0.0.1:{ports[name]}/metrics" for name in _METRICS],
        )
    finally:
        process.kill_tree()
        for orphan in started:  # should honcho have died before its children
            with contextlib.suppress(psutil.NoSuchProcess):
                orphan.kill()


async def healthy(http: httpx.AsyncClient, process: Process) -> bool:
    if process.exit_code is not None:
        raise AssertionError(f"honcho exited early:\n{process.output()[-3000:]}")
    try:
        return (await http.get("/ready")).status_code == 200
    except httpx.TransportError:
        return False
