"""Scenarios "memory.*": peak resident memory of the real processes under a large input.

RSS is sampled every ``SAMPLE_SECONDS`` by a thread (psutil), summed over the process and
its children (the PDF parser runs in one). The store plays no part in either figure (the
upload writes one event; the worker a few), so they are measured on SQLite only.

- ``memory.api_upload_1gb``: ``python -m infrastructure.api`` receives one multipart upload
  of 1 GB (quick: 200 MB) made up on the fly and sent chunked (no Content-Length); the value
  is the peak RSS growth over the process's RSS at rest, after a small warm-up upload. The
  baseline is the same growth in ``bench.bare_upload`` (FastAPI's ``UploadFile``, which
  spools to disk) for the same upload.
- ``memory.worker_pdf_500p``: ``python -m infrastructure.temporal.worker`` runs one
  ``ProcessArtifactWorkflow`` on a 500-page PDF full of text (inspect, extract in the parser
  child, summarize, record); the value is the peak RSS of the worker and its child, the
  baseline the worker's RSS at rest (connected, polling) just before.
- ``memory.worker_ocr_100p``: the same on a 100-page image-only PDF (quick: 20 pages), every
  page rendered and OCRed in the parser children.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
from temporalio.client import Client

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest
from bench.ingest import answers
from bench.pdf_throughput import store_blob
from bench.report import Result
from domain.artifact import workflow_id_for
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from infrastructure.temporal.models import ProcessingOutcome
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator
from tests.support import Process, free_port, fresh_settings, running, service_env, wait_until

MB = 1024 * 1024
SAMPLE_SECONDS = 0.02
CHUNK = 1024 * 1024
BOUNDARY = "bench-memory-boundary"


class PeakRss:
    """The largest RSS (bytes) of a process tree seen while the block ran."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()

    def now(self) -> int:
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += _own_rss(child)
        return total

    @contextlib.contextmanager
    def sampling(self) -> Iterator[PeakRss]:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, self.now())

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            with contextlib.suppress(psutil.NoSuchProcess):
                self.peak = max(self.peak, self.now())


def _own_rss(process: psutil.Process) -> int:
    """The resident memory ``process`` adds to its parent's.

    A fork that did not exec (a parser child of the fork server, or the worker between
    fork and exec when it starts the server) shares its parent's pages until it writes
    them, and has its parent's command line: its RSS would count them twice (a 330 MB
    "peak" for a 170 MB worker starting a process). Its own pages are its USS; reading
    them takes root when the process is not dumpable (parser children), else its RSS is
    the upper bound.
    """
    parent = process.parent()
    if parent is None or process.cmdline() != parent.cmdline():
        return int(process.memory_info().rss)
    try:
        return int(process.memory_full_info().uss)
    except psutil.AccessDenied:
        return int(process.memory_info().rss)


async def api_upload(temporal_address: str, root: Path, *, size: int) -> Result:
    api_port, bare_port = free_port(), free_port()
    uploads = root / "memory-bare-uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    with fresh_settings(
        root, "sqlite", temporal_address=temporal_address, task_queue="bench-memory"
    ) as settings:
        env = service_env(
            settings,
            API_HOST="127.0.0.1",
            API_PORT=str(api_port),
            MAX_UPLOAD_BYTES=str(size + MB),
            LOG_LEVEL="WARNING",
        )
        api = Process.service("api", env=env, log_path=root / "mem-api.log")
        bare = Process(
            [
                *(sys.executable, "-m", "uvicorn", "bench.bare_upload:app"),
                *("--host", "127.0.0.1", "--port", str(bare_port), "--log-level", "warning"),
            ],
            env={**os.environ, "BENCH_UPLOAD_DIR": str(uploads)},
            log_path=root / "mem-bare.log",
        )
        with running(api), running(bare):
            await wait_until(lambda: answers(api_port), timeout=60, what="the API answers")
            await wait_until(lambda: answers(bare_port), timeout=60, what="the bare app answers")
            project, project_rate = await _upload_growth(api, api_port, size)
            baseline, baseline_rate = await _upload_growth(bare, bare_port, size)
    label = f"{size // 1024**3} GB" if size >= 1024**3 else f"{size // MB} MB"
    return Result(
        name="memory.api_upload_1gb",
        value=project,
        unit="MB",
        baseline=baseline,
        ratio=project / max(baseline, 1.0),
        target=100.0,
        ok=project < 100.0,
        rounds=[(project, baseline)],
        lower_is_better=True,
        note=f"peak RSS growth during one {label} chunked multipart upload "
        f"({project_rate:.0f} MB/s; baseline {baseline_rate:.0f} MB/s); baseline: "
        f"bench.bare_upload's growth; target on the value (< 100 MB), not the ratio; SQLite "
        f"(the store plays no part)",
    )


async def _upload_growth(process: Process, port: int, size: int) -> tuple[float, float]:
    """Peak RSS growth (MB) of ``process`` while it receives a ``size``-byte upload, and
    the upload's rate (MB/s)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
        # Warm-up: the first upload imports and allocates what every upload needs.
        (await _post(http, MB)).raise_for_status()
        await asyncio.sleep(0.5)
        rss = PeakRss(process.pid)
        resting = rss.now()
        with rss.sampling():
            started = time.perf_counter()
            response = await _post(http, size)
            elapsed = time.perf_counter() - started
        response.raise_for_status()
    return (rss.peak - resting) / MB, size / MB / elapsed


async def _post(http: httpx.AsyncClient, size: int) -> httpx.Response:
    return await http.post(
        "/artifacts",
        content=_multipart(size),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )


async def _multipart(size: int) -> AsyncIterator[bytes]:
    """A multipart body with one ``file`` part of ``size`` bytes, made as it is sent."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    # One random megabyte, rotated by a byte per chunk: cheap, and no two chunks alike.
    block = os.urandom(CHUNK)
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        shift = (sent // CHUNK) % CHUNK
        yield (block[shift:] + block[:shift])[:n]
        sent += n
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def worker_pdf(client: Client, root: Path, pdf: Path, *, pages: int) -> Result:
    peak, resting = await _worker_peak(client, root, pdf, pages=pages)
    return Result(
        name="memory.worker_pdf_500p",
        value=peak,
        unit="MB",
        baseline=resting,
        ratio=peak / resting,
        target=300.0,
        ok=peak < 300.0,
        rounds=[(peak, resting)],
        lower_is_better=True,
        note=f"peak RSS of the Temporal worker and its parser child over one "
        f"ProcessArtifactWorkflow on a {pages}-page PDF; baseline: the idle worker; target "
        f"on the value (< 300 MB), not the ratio; SQLite (the store plays no part)",
    )


async def worker_ocr(client: Client, root: Path, scan: Path, *, pages: int) -> Result:
    peak, resting = await _worker_peak(client, root, scan, pages=pages)
    return Result(
        name="memory.worker_ocr_100p",
        value=peak,
        unit="MB",
        baseline=resting,
        ratio=peak / resting,
        target=400.0,
        ok=peak < 400.0,
        rounds=[(peak, resting)],
        lower_is_better=True,
        note=f"peak RSS of the Temporal worker and its parser children over one "
        f"ProcessArtifactWorkflow on a {pages}-page image-only PDF (every page rendered and "
        f"OCRed); baseline: the idle worker; target on the value (< 400 MB), not "
        f"the ratio; SQLite (the store plays no part)",
    )


async def _worker_peak(client: Client, root: Path, pdf: Path, *, pages: int) -> tuple[float, float]:
    """Peak RSS (MB) of a Temporal worker and its children while it processes ``pdf``, and
    its RSS at rest just before."""
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    with fresh_settings(
        root,
        "sqlite",
        temporal_address=client.service_client.config.target_host,
        task_queue=task_queue,
    ) as settings:
        request = await asyncio.to_thread(_upload_directly, settings, pdf)
        env = service_env(settings)
        worker = Process.service(
            "temporal_worker",
            env=env,
            log_path=root / f"memory-worker-{task_queue}.log",
        )
        with running(worker):
            rss = PeakRss(worker.pid)
            await _started(worker)
            # Let its pollers and first allocations settle before taking the resting figure.
            await asyncio.sleep(1.0)
            resting = rss.now()
            with rss.sampling():
                await TemporalWorkflowOrchestrator(client, task_queue).start_processing(request)
                handle = client.get_workflow_handle(
                    workflow_id_for(request.artifact_id), result_type=ProcessingOutcome
                )
                outcome = await handle.result()
        if outcome.status != "processed" or outcome.page_count != pages:
            raise RuntimeError(f"the workflow did not process the PDF: {outcome}")
    return rss.peak / MB, resting / MB


def _upload_directly(settings: Settings, pdf: Path) -> ProcessingRequest:
    """The PDF as the API would have stored it: a blob and an ``ArtifactCreated`` event."""
    location = store_blob(LocalBlobStore(settings.blob_dir), pdf)
    data = pdf.read_bytes()
    app = ArtifactsApplication(env=application_env(settings))
    try:
        fields = {
            "filename": pdf.name,
            "content_type": "application/pdf",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "storage_location": location,
        }
        artifact_id = app.create_artifact_once(idempotency_key=None, **fields).id  # type: ignore[arg-type]
    finally:
        app.close()
    del fields["filename"]  # the request names no file (it crosses Temporal)
    return ProcessingRequest(artifact_id=artifact_id, **fields)  # type: ignore[arg-type]


async def _started(worker: Process) -> None:
    await wait_until(
        lambda: "temporal_worker_started" in worker.output() or worker.exit_code is not None,
        timeout=60,
        what="the Temporal worker starts",
    )
    if worker.exit_code is not None:
        raise RuntimeError(f"the Temporal worker exited:\n{worker.output()}")
