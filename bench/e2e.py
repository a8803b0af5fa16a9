"""Scenario "end to end": small text uploads to ``processed``, per second.

Project: ``N`` small text files posted to the real API process (``CLIENTS`` at a time); the
real pipeline worker process starts their runs; a real Temporal worker process runs
``ProcessArtifactWorkflow`` with the real activities (inspect, extract, LexRank summary,
record). Baseline: the same ``N`` runs started directly by this script on an identical
Temporal worker process of its own (own store, own task queue): per artifact it writes the
blob where the activities read it and creates the aggregate, which the real activities
record onto (without it a run fails at its first step), then starts the run as the
orchestrator does. No API, no subscription, no pipeline worker.

Either side's figure is ``N`` over the time from its first upload (or start) to the last run
returning ``processed``; each waits for the runs the same way, through Temporal.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest
from bench.report import Result, result
from domain.artifact import workflow_id_for
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator
from infrastructure.temporal.workflows import ProcessArtifactWorkflow
from tests.support import Process, free_port, fresh_settings, running, service_env, wait_until

CLIENTS = 8
SENTENCES = (
    "Temporal runs workflows durably and retries activities that fail.",
    "An event store keeps every fact that happened to an artifact.",
    "The pipeline worker turns each upload into exactly one workflow run.",
    "A read model answers list queries without touching the event store.",
    "Summaries are extracted offline with LexRank from the decoded text.",
)


def text(i: int) -> bytes:
    """A small text file (about 1 KB), different for each ``i`` so that no upload repeats."""
    lines = [f"Artifact number {i} of the end to end benchmark."]
    lines += [f"{s} ({i}.{k})" for k in range(3) for s in SENTENCES]
    return ("\n".join(lines) + "\n").encode()


async def run(client: Client, root: Path, store: str, *, n: int, rounds: int) -> Result:
    address = client.service_client.config.target_host
    api_port = free_port()
    with (
        fresh_settings(root, store, temporal_address=address, task_queue=_queue()) as project,
        fresh_settings(root, store, temporal_address=address, task_queue=_queue()) as direct,
    ):
        env = service_env(project, API_HOST="127.0.0.1", API_PORT=str(api_port))
        processes = [
            Process.service(name, env=env, log_path=root / f"e2e-{log}.log")
            for name, log in (
                ("api", "api"),
                ("pipeline_worker", "pipeline"),
                ("temporal_worker", "temporal"),
            )
        ]
        processes.append(
            Process.service(
                "temporal_worker",
                env=service_env(direct),
                log_path=root / "e2e-direct-temporal.log",
            )
        )
        api, pipeline, worker, direct_worker = processes
        app = ArtifactsApplication(env=application_env(direct))
        try:
            with running(api), running(pipeline), running(worker), running(direct_worker):
                await _ready(api_port, pipeline, worker, direct_worker)
                # Unmeasured: each Temporal worker's first summaries load LexRank's tokenizer
                # data, seconds that would land on whichever side ran first.
                await upload_all(client, api_port, n=CLIENTS, first=-CLIENTS)
                await start_directly(client, app, direct, n=CLIENTS, first=-CLIENTS)
                measured = []
                for r in range(rounds):
                    # Sides in turn first (A B, B A, ...): neither always runs on a warmer
                    # worker or a fuller Temporal server.
                    uploads = upload_all(client, api_port, n=n, first=r * n)
                    starts = start_directly(client, app, direct, n=n, first=r * n)
                    if r % 2:
                        started, uploaded = await starts, await uploads
                    else:
                        uploaded, started = await uploads, await starts
                    measured.append((uploaded, started))
        finally:
            app.close()
    return result(
        f"end to end ({store})",
        "processed/s",
        measured,
        target=0.85,
        note=f"N={n} text files of ~1 KB per round, {CLIENTS} at a time; baseline starts "
        "the runs directly on an identical Temporal worker",
    )


def _queue() -> str:
    return f"bench-{uuid.uuid4().hex[:8]}"


async def _ready(api_port: int, pipeline: Process, *workers: Process) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
        await wait_until(lambda: _answers(http), timeout=60, what="the API answers")
    await wait_until(
        lambda: "pipeline_worker_subscribed" in pipeline.output(),
        timeout=60,
        what="the pipeline worker subscribes",
    )
    for worker in workers:
        await wait_until(
            lambda w=worker: "temporal_worker_started" in w.output(),  # type: ignore[misc]
            timeout=60,
            what="the Temporal worker polls",
        )


async def _answers(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/health")).status_code == 200
    except httpx.HTTPError:
        return False


async def upload_all(client: Client, api_port: int, *, n: int, first: int) -> float:
    """Processed per second of ``n`` uploads through the API, ``CLIENTS`` at a time."""
    limits = httpx.Limits(max_connections=CLIENTS)
    gate = asyncio.Semaphore(CLIENTS)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{api_port}", limits=limits, timeout=60
    ) as http:

        async def one(i: int) -> None:
            async with gate:
                response = await http.post(
                    "/artifacts", files={"file": (f"e2e-{i}.txt", text(i), "text/plain")}
                )
                response.raise_for_status()
            await processed(client, uuid.UUID(response.json()["id"]))

        started = time.perf_counter()
        await asyncio.gather(*(one(first + i) for i in range(n)))
    return n / (time.perf_counter() - started)


async def start_directly(
    client: Client, app: ArtifactsApplication, settings: Settings, *, n: int, first: int
) -> float:
    """Processed per second of ``n`` runs this script starts itself, ``CLIENTS`` at a time."""
    blobs = LocalBlobStore(settings.blob_dir)
    orchestrator = TemporalWorkflowOrchestrator(client, settings.temporal_task_queue)
    gate = asyncio.Semaphore(CLIENTS)

    def prepare(i: int) -> ProcessingRequest:
        writer = blobs.writer()
        writer.write(text(i))
        blob = writer.commit()
        artifact_id = app.create_artifact_once(
            idempotency_key=None,
            filename=f"e2e-{i}.txt",
            content_type="text/plain",
            size=blob.size,
            sha256=blob.sha256,
            storage_location=blob.location,
        ).id
        return app.processing_request_for(artifact_id, run=0)

    async def one(i: int) -> None:
        async with gate:
            request = await asyncio.to_thread(prepare, i)
            await orchestrator.start_processing(request)
        await processed(client, request.artifact_id)

    started = time.perf_counter()
    await asyncio.gather(*(one(first + i) for i in range(n)))
    return n / (time.perf_counter() - started)


async def processed(client: Client, artifact_id: uuid.UUID) -> None:
    """Returns once the artifact's run has ended ``processed`` (waits for it to exist)."""
    handle = client.get_workflow_handle_for(
        ProcessArtifactWorkflow.run, workflow_id_for(artifact_id)
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            outcome = await handle.result()
            break
        except RPCError as err:  # not started yet
            if err.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    if outcome.status != "processed":
        raise RuntimeError(f"{artifact_id} ended {outcome.status}, not processed")
