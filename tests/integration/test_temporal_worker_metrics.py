"""The Temporal worker's SDK metrics, served for Prometheus by the SDK's runtime."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infrastructure.temporal.connection import connect, metrics_runtime
from infrastructure.temporal.workflows import ProcessArtifactWorkflow
from tests.conftest import make_settings
from tests.integration.support import free_port, wait_until


async def test_a_worker_on_a_metrics_runtime_serves_the_sdk_metrics(
    temporal_dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(tmp_path, "sqlite")
    settings.temporal_address = temporal_dev_env.client.service_client.config.target_host
    client = await connect(settings, runtime=metrics_runtime(f"127.0.0.1:{port}"))
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
