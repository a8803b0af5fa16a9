"""The Temporal worker's SDK metrics, served for Prometheus by the SDK's runtime."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infrastructure.temporal.connection import connect, metrics_runtime
from infrastructure.temporal.workflows import ProcessArtifactWorkflow
from tests.support import free_port, make_settings, wait_until


async def test_a_worker_on_a_metrics_runtime_serves_the_sdk_metrics(
    temporal_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(tmp_path, "sqlite")
    settings.temporal_address = temporal_dev_env.client.service_client.config.target_host
    runtime = metrics_runtime(f"127.0.0.1:{port}")
    assert runtime is not None
    client = await connect(settings, runtime=runtime)
    worker = Worker(client, task_queue=f"test-{uuid.uuid4()}", workflows=[ProcessArtifactWorkflow])

    async with worker:
        await wait_until(
            lambda: _polls_reported(port), timeout=20, what="the SDK reports its pollers"
        )


async def _polls_reported(port: int) -> bool:
    def scrape() -> str:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    try:
        text = await asyncio.to_thread(scrape)
    except OSError:
        return False
    return "temporal_" in text


def test_a_metrics_address_in_use_costs_the_metrics_not_the_worker() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        host, port = taken.getsockname()

        assert metrics_runtime(f"{host}:{port}") is None
