"""The whole service as ``make dev`` runs it: honcho, the Procfile, real processes and ports.

A user's view: upload over HTTP, watch the artifact become ``processed`` with the MIME type
sniffed from its bytes; Temporal shows one completed run for it; Ctrl-C stops everything.
"""

from __future__ import annotations

import hashlib
import io
import re
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psutil
import pytest
from reportlab.pdfgen import canvas  # type: ignore[import-untyped]
from temporalio.client import Client, WorkflowExecutionStatus

from infrastructure.temporal.models import ARTIFACT_ID, ARTIFACT_OUTCOME, MIME_TYPE
from tests.e2e.stack import DevStack
from tests.support import REPO_ROOT, port_is_open, wait_until

pytestmark = pytest.mark.temporal


def small_pdf() -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, "A small PDF for the end-to-end test.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


UPLOADS = [
    ("report.pdf", small_pdf, "application/pdf"),
    (
        "notes.txt",
        lambda: b"Plain text, several words long, for libmagic to sniff.\n",
        "text/plain",
    ),
]


async def upload_and_wait_until_processed(
    http: httpx.AsyncClient, filename: str, content: bytes
) -> tuple[dict[str, Any], float]:
    """Uploads one file; returns its final view and the seconds from upload to processed."""
    started = time.monotonic()
    response = await http.post(
        "/artifacts", files={"file": (filename, content, "application/octet-stream")}
    )
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    view: dict[str, Any] = {}

    async def processed() -> bool:
        nonlocal view
        view = (await http.get(location)).json()
        assert view["status"] != "failed", view
        return bool(view["status"] == "processed")

    await wait_until(processed, timeout=60, what=f"{filename} is processed", interval=0.05)
    return view, time.monotonic() - started


async def test_an_upload_is_processed_once_and_the_stack_stops_on_ctrl_c(
    dev_stack: DevStack, record_property: Callable[[str, object], None]
) -> None:
    async with httpx.AsyncClient(base_url=dev_stack.api_url, timeout=10) as http:
        results = []
        for filename, make, expected_mime in UPLOADS:
            content = make()
            view, seconds = await upload_and_wait_until_processed(http, filename, content)
            results.append((filename, view, seconds))
            assert view["mime_type"] == expected_mime
            assert view["size"] == len(content)
            assert view["sha256"] == hashlib.sha256(content).hexdigest()
            assert view["filename"] == filename
            assert view["workflow_id"] == f"artifact-{view['id']}"

    temporal = await Client.connect(dev_stack.temporal_address)
    for workflow_id in (view["workflow_id"] for _, view, _ in results):
        await wait_until(
            the_one_run_completed(temporal, workflow_id),
            timeout=10,
            what=f"{workflow_id} is listed as one completed run",
        )

    for _, view, _ in results:
        # Findable in the Temporal UI: make dev registered the search attributes.
        described = await temporal.get_workflow_handle(view["workflow_id"]).describe()
        assert described.typed_search_attributes.get(ARTIFACT_ID) == view["id"]
        assert described.typed_search_attributes.get(MIME_TYPE) == view["mime_type"]
        assert described.typed_search_attributes.get(ARTIFACT_OUTCOME) == "processed"

    async with httpx.AsyncClient(timeout=5) as http:
        api_metrics = (await http.get(f"{dev_stack.api_url}/metrics")).text
        assert f"artifact_uploads_total {float(len(UPLOADS))}" in api_metrics
        for url in dev_stack.metrics_urls:
            assert (await http.get(url)).status_code == 200, url

    for filename, _, seconds in results:
        record_property(f"upload_to_processed_seconds[{filename}]", round(seconds, 3))
        print(f"upload -> processed: {filename} in {seconds:.2f} s")

    # Ctrl-C in `make dev`: honcho passes SIGTERM on to every process it started.
    assert dev_stack.processes, "honcho started no processes"
    dev_stack.process.send(signal.SIGINT)
    sent = time.monotonic()
    await dev_stack.process.wait_for_exit(timeout=20)
    await wait_until(
        lambda: not any(alive(p) for p in dev_stack.processes),
        timeout=5,
        what="every process honcho started has exited",
    )
    print(f"stack stopped {time.monotonic() - sent:.1f} s after Ctrl-C")
    assert not [port for port in dev_stack.ports if port_is_open(port)]
    log = dev_stack.process.output()
    assert "SIGKILL" not in log, "a process had to be killed: it ignored SIGTERM for 5 s"
    # honcho reports the /bin/sh wrappers' exit codes; the processes' own logs show whether
    # each of them shut down in order rather than being cut off.
    assert set(re.findall(r"(\w+)\.1 stopped", log)) == procfile_names()
    for orderly_stop in (
        '"event": "pipeline_worker_stopped"',
        '"event": "read_worker_stopped"',
        '"event": "temporal_worker_stopped"',
        '"event": "Application shutdown complete."',
    ):
        assert orderly_stop in log, f"no {orderly_stop} in the log"


def procfile_names() -> set[str]:
    procfile = REPO_ROOT / "Procfile"
    return {line.split(":", 1)[0] for line in procfile.read_text().splitlines() if ":" in line}


def the_one_run_completed(client: Client, workflow_id: str) -> Callable[[], Awaitable[bool]]:
    async def completed() -> bool:
        runs = [run async for run in client.list_workflows(f'WorkflowId="{workflow_id}"')]
        assert len(runs) <= 1, f"{workflow_id} has {len(runs)} runs"
        return len(runs) == 1 and runs[0].status == WorkflowExecutionStatus.COMPLETED

    return completed


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
