"""Prometheus metrics of the workers that follow the event store.

Each consumer (``pipeline_worker``, ``read_worker``) serves its own registry on a small HTTP
endpoint of its own (``PIPELINE_WORKER_METRICS_PORT``, ``READ_WORKER_METRICS_PORT``; 0 turns
it off). Lag is measured, not inferred: every few seconds the worker asks the event store for
its head and compares it with the position the consumer recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import structlog
from eventsourcing.persistence import ApplicationRecorder
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

log = structlog.get_logger(__name__)

LAG_INTERVAL_SECONDS = 5.0


class ConsumerMetrics:
    """How far a consumer of the event store is behind, its dead letters, and (pipeline
    worker) its starts."""

    def __init__(self, consumer: str, registry: CollectorRegistry | None = None) -> None:
        self.consumer = consumer
        self.registry = registry or CollectorRegistry()
        self.head = Gauge(
            "event_store_head", "The event store's last notification id", registry=self.registry
        )
        self.position = Gauge(
            "consumer_position",
            "The last notification id this consumer recorded",
            registry=self.registry,
        )
        self.lag = Gauge(
            "consumer_lag_events",
            "Event-store head minus this consumer's position; 0 when none of the events after "
            "the position is one it follows",
            registry=self.registry,
        )
        self.workflows_started = Counter(
            "workflow_starts",
            "Workflow starts the orchestrator accepted (a new run, or a still-open run joined)",
            registry=self.registry,
        )
        self.workflows_already_started = Counter(
            "workflow_starts_duplicate",
            "Starts refused because the run already ran (workflow_already_started)",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "dead_letters",
            "Events this consumer could not handle and recorded as dead letters (it moved on)",
            registry=self.registry,
        )
        self.dead_letters_open = Gauge(
            "dead_letters_open",
            "Dead letters not resolved yet (open or marked for retry); see GET /dead-letters",
            registry=self.registry,
        )

    def measure_lag(
        self, recorder: ApplicationRecorder, topics: Sequence[str], position: int | None
    ) -> None:
        """Sets the gauges from the store's head (blocking: one or two cheap queries)."""
        head = recorder.max_notification_id() or 0
        at = position or 0
        lag = head - at if head > at else 0
        # The tail after the position may hold only events this consumer skips: then it is
        # caught up, however far the head has moved on.
        if lag and not recorder.select_notifications(
            start=position, limit=1, topics=list(topics), inclusive_of_start=False
        ):
            lag = 0
        self.head.set(head)
        self.position.set(at)
        self.lag.set(lag)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serves ``registry`` on http://host:port/metrics from a daemon thread; 0: not at all.

    A port in use (a second worker of the same kind on this host) costs the metrics, not the
    worker: it logs ``metrics_unavailable`` and carries on.
    """
    if not port:
        return
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as err:
        log.warning("metrics_unavailable", address=f"{host}:{port}", error=str(err))
        return
    log.info("metrics_served", address=f"{host}:{port}")


async def watch_lag(
    metrics: ConsumerMetrics,
    recorder: ApplicationRecorder,
    topics: Sequence[str],
    position: Callable[[], int | None],
    stop: asyncio.Event,
    interval: float = LAG_INTERVAL_SECONDS,
) -> None:
    """Measures the lag every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(lambda: metrics.measure_lag(recorder, topics, position()))
        except Exception as err:  # the store is away; the workers themselves say so
            log.warning("lag_unmeasured", consumer=metrics.consumer, error=repr(err))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
