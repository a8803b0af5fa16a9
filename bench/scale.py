"""Scenario "scale": does a bigger backlog (catch-up after downtime) cost more per event?

Trigger cost: the pipeline worker drains a backlog of ``ArtifactCreated`` events exactly as
in the "trigger" scenario (``bench.trigger.drain_backlog``), once with a small backlog and
once with a large one, alternately, each on a fresh Temporal dev server (as after downtime:
the server holds none of the earlier drains' runs); the ratio is the per-event cost at the
large size over that at the small size (lower is better, target at most 1.2).

List query: the read model (``ArtifactListView``, what ``GET /artifacts`` reads) holding the
large size's artifacts, projected by the real ``ArtifactListProjection``; the figure is the
p99 of its list query over first pages, deep cursor pages and filtered pages (target 50 ms).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from eventsourcing.persistence import Tracking

from application.artifacts import ArtifactsApplication
from bench import plots
from bench.report import Result, median_ratio, p99, under_bound
from bench.trigger import create_backlog, drain_backlog
from infrastructure.eventstore import application_env
from infrastructure.read_model import ArtifactListProjection, ArtifactListView, artifact_catalog
from infrastructure.read_model.view import encode_cursor
from tests.support import fresh_settings, start_dev_server

QUERY_BOUND_MS = 50.0
QUERIES = 400


async def run(root: Path, store: str, *, quick: bool) -> list[Result]:
    small, large = (150, 1500) if quick else (1000, 20_000)
    rounds = 1 if quick else 2
    costs: list[tuple[float, float]] = []  # ms per event: (large, small)
    for r in range(rounds):
        rates: dict[int, float] = {}
        for n in (small, large) if r % 2 == 0 else (large, small):
            rates[n] = await _drain_on_a_fresh_server(root, store, n=n)
        costs.append((1000 / rates[large], 1000 / rates[small]))
    # Drawn as throughput (starts/s) against backlog size.
    plots.record(
        "scale",
        store,
        {str(small): [1000 / s for _, s in costs], str(large): [1000 / g for g, _ in costs]},
    )
    ratio = median_ratio(costs)
    trigger = Result(
        name=f"scale: trigger cost per event ({store})",
        value=statistics.median(g for g, _ in costs),
        unit="ms/event",
        baseline=statistics.median(s for _, s in costs),
        ratio=ratio,
        target=1.2,
        ok=ratio <= 1.2,
        rounds=costs,
        lower_is_better=True,
        note=f"backlog of {large:,} (project) vs {small:,} (baseline) ArtifactCreated events, "
        "each drained on a fresh Temporal dev server, "
        f"{rounds} round(s), sizes alternated; ratio = cost per event at {large:,} / at {small:,}",
    )
    return [trigger, await list_query(root, store, n=large)]


async def _drain_on_a_fresh_server(root: Path, store: str, *, n: int) -> float:
    """``drain_backlog`` on a Temporal dev server of its own.

    Every drained run stays open, and the dev server's start latency grows with the runs it
    holds (measured: 78 ms per start on a fresh server, 165 ms after 21,000 runs; the
    worker's throughput is its in-flight starts over that latency). On a shared server each
    drain would pay for the ones before it, whatever their size.
    """
    env = await start_dev_server(log_level="error")
    try:
        return await drain_backlog(env.client, root, store, n=n)
    finally:
        await env.shutdown()


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
    """``n`` artifacts created (the trigger backlog's), projected as the read worker does."""
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
    page = view.list_artifacts(status=None, mime_type=None, limit=500, cursor=None)
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
