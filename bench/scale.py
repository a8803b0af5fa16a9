"""Scenario "scale": does the pipeline worker keep up with a large backlog (catch-up after
downtime), against the same starts made directly?

Backlog drain: the pipeline worker drains a backlog of ``ArtifactCreated`` events exactly as
in the "trigger" scenario (``bench.trigger.drain_backlog``). Baseline: a script starting the
same number of runs with the real ``TemporalWorkflowOrchestrator.start_processing`` (same
workflow, input, id policies, search attribute, memo and execution timeout), its requests
built beforehand, as many at once as the worker had in flight at most
(``PIPELINE_MAX_IN_FLIGHT``, which bounds it exactly). So the only difference is our
pipeline: reading the event store, building the requests, recording positions in order.
Each side runs on a Temporal dev server of its own, started for it, and the sides alternate
over rounds; the figure is the median of the per-round ratios of starts/s (target at least
0.9).

List query: the read model (``ArtifactListView``, what ``GET /artifacts`` reads) holding the
backlog's artifacts, projected by the real ``ArtifactListProjection``; the figure is the
p99 of its list query over first pages, deep cursor pages and filtered pages (target 50 ms).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from eventsourcing.persistence import Tracking
from temporalio.client import Client

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest, WorkflowOrchestrator
from bench import plots
from bench.report import Result, p99, result, under_bound
from bench.trigger import create_backlog, drain_backlog, upload
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from infrastructure.read_model import ArtifactListProjection, ArtifactListView, artifact_catalog
from infrastructure.read_model.view import encode_cursor
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator
from tests.support import fresh_settings, start_dev_server

QUERY_BOUND_MS = 50.0
QUERIES = 400
PROJECT, BASELINE = "pipeline worker", "direct starts"


async def run(root: Path, store: str, *, quick: bool) -> list[Result]:
    n = 1500 if quick else 20_000
    # A full round drains 20,000 events twice (about five minutes here): two rounds, one
    # in each order.
    rounds = 3 if quick else 2
    drains: list[CountingOrchestrator] = []

    def counted(client: Client, task_queue: str) -> WorkflowOrchestrator:
        drains.append(CountingOrchestrator(TemporalWorkflowOrchestrator(client, task_queue)))
        return drains[-1]

    sides: dict[str, Callable[[Client], Awaitable[float]]] = {
        PROJECT: lambda client: drain_backlog(client, root, store, n=n, orchestrator_for=counted),
        # As many at once as the worker had in flight in the first drain (round one puts the
        # worker first): PIPELINE_MAX_IN_FLIGHT, measured rather than assumed.
        BASELINE: lambda client: start_directly(client, n=n, in_flight=drains[0].most_in_flight),
    }
    measured: list[tuple[float, float]] = []
    for r in range(rounds):
        rates: dict[str, float] = {}
        for side in (PROJECT, BASELINE) if r % 2 == 0 else (BASELINE, PROJECT):
            rates[side] = await _on_a_fresh_server(sides[side])
        measured.append((rates[PROJECT], rates[BASELINE]))
    plots.record(
        "scale",
        store,
        {PROJECT: [p for p, _ in measured], BASELINE: [b for _, b in measured]},
    )
    drain = result(
        f"scale: backlog drain ({store})",
        "starts/s",
        measured,
        target=0.9,
        note=f"{n:,} ArtifactCreated events drained by the pipeline worker "
        f"(PIPELINE_MAX_IN_FLIGHT {Settings().pipeline_max_in_flight}, at most "
        f"{', '.join(str(d.most_in_flight) for d in drains)} starts in flight by drain) vs "
        f"{n:,} start_processing calls made directly, {drains[0].most_in_flight} at a time; "
        f"each side on a fresh Temporal dev server, {rounds} round(s), sides alternated",
    )
    return [drain, await list_query(root, store, n=n)]


class CountingOrchestrator:
    """Passes every call on to ``inner``, and records the most starts in flight at once."""

    def __init__(self, inner: WorkflowOrchestrator) -> None:
        self.most_in_flight = 0
        self._inner = inner
        self._in_flight = 0

    async def start_processing(self, request: ProcessingRequest) -> bool:
        self._in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            return await self._inner.start_processing(request)
        finally:
            self._in_flight -= 1

    async def cancel_processing(self, artifact_id: uuid.UUID, run: int) -> None:
        await self._inner.cancel_processing(artifact_id, run)


async def _on_a_fresh_server(side: Callable[[Client], Awaitable[float]]) -> float:
    """``side`` on a Temporal dev server of its own.

    Every started run stays open, and the dev server's start latency grows with the runs it
    holds (measured: 78 ms per start on a fresh server, 165 ms after 21,000 runs). On a
    shared server each side would pay for the runs the one before it left open.
    """
    env = await start_dev_server(log_level="error")
    try:
        return await side(env.client)
    finally:
        await env.shutdown()


async def start_directly(client: Client, *, n: int, in_flight: int) -> float:
    """Starts per second of ``n`` direct ``start_processing`` calls on a task queue that no
    worker polls (so the runs stay open, as in the drain)."""
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    orchestrator = TemporalWorkflowOrchestrator(client, task_queue)
    return await start_all(orchestrator, backlog_requests(n), in_flight=in_flight)


def backlog_requests(n: int) -> list[ProcessingRequest]:
    """The requests the pipeline worker builds from ``create_backlog``'s ``n`` events."""
    requests = []
    for i in range(n):
        facts = upload(i)
        del facts["filename"]  # the request names no file (it crosses Temporal)
        requests.append(ProcessingRequest(artifact_id=uuid.uuid4(), **facts))
    return requests


async def start_all(
    orchestrator: WorkflowOrchestrator, requests: Sequence[ProcessingRequest], *, in_flight: int
) -> float:
    """Starts per second of ``requests``, ``in_flight`` at a time: a new start as soon as one
    returns, as the pipeline worker keeps its starts in flight."""
    pending = iter(requests)

    async def starter() -> None:
        for request in pending:  # one shared iterator: each request is taken once
            if not await orchestrator.start_processing(request):
                raise RuntimeError(f"{request.artifact_id} was started before")

    started = time.perf_counter()
    await asyncio.gather(*(starter() for _ in range(in_flight)))
    return len(requests) / (time.perf_counter() - started)


async def list_query(root: Path, store: str, *, n: int) -> Result:
    """The p99 of the read model's list query with ``n`` artifacts in it."""
    with fresh_settings(root, store, temporal_address="", task_queue="bench-scale") as settings:
        app = ArtifactsApplication(env=application_env(settings))
        view = artifact_catalog(settings)
        try:
            await asyncio.to_thread(_fill, app, view, n)
            by_kind = await asyncio.to_thread(_query, view)
        finally:
            view.close()
            app.close()
    latencies = [ms for kind in by_kind.values() for ms in kind]
    p50 = statistics.median(latencies)
    worst = ", ".join(f"{kind} {max(ms):.1f}" for kind, ms in by_kind.items())
    return under_bound(
        f"scale: list query p99 ({store})",
        p99(latencies),
        "ms",
        QUERY_BOUND_MS,
        note=f"{n:,} artifacts in the read model (all uploaded); {QUERIES} list queries of 50, "
        f"p50 {p50:.1f} ms; slowest by kind (ms): {worst}",
    )


def _fill(app: ArtifactsApplication, view: ArtifactListView, n: int) -> None:
    """``n`` artifacts created (the drained backlog's), projected as the read worker does."""
    create_backlog(app, n)
    projection = ArtifactListProjection(view=view)
    position = 0
    while notifications := app.recorder.select_notifications(
        start=position + 1, limit=1000, topics=projection.topics
    ):
        for notification in notifications:
            event = app.mapper.to_domain_event(notification)
            projection.process_event(event, Tracking(app.name, notification.id))
            position = notification.id


def _query(view: ArtifactListView) -> dict[str, list[float]]:
    """Milliseconds per list query of 50, by kind, cycling through the kinds a client asks."""
    page = view.list_artifacts(status=None, mime_type=None, limit=500, cursor=None, tenant=None)
    deep = page.items[-1]
    kinds: dict[str, dict[str, str | None]] = {
        "first page": {"status": None, "mime_type": None, "cursor": None},
        "page 11": {
            "status": None,
            "mime_type": None,
            "cursor": encode_cursor(deep.created_at, deep.id),
        },
        "status=uploaded": {"status": "uploaded", "mime_type": None, "cursor": None},
        "a mime type no row has": {"status": None, "mime_type": "application/pdf", "cursor": None},
    }
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(QUERIES):
        kind = list(kinds)[i % len(kinds)]
        started = time.perf_counter()
        view.list_artifacts(limit=50, **kinds[kind])
        latencies[kind].append((time.perf_counter() - started) * 1000)
    return latencies
