"""The workers' Prometheus metrics: lag against a real (in-memory) event store, over HTTP."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic
from structlog.testing import capture_logs

from application.artifacts import ArtifactsApplication
from domain.artifact import ArtifactCreated
from infrastructure.metrics import ConsumerMetrics, serve_metrics
from tests.fakes import in_memory_artifacts

CREATED = [get_topic(ArtifactCreated)]


@pytest.fixture
def artifacts() -> Iterator[ArtifactsApplication]:
    artifacts = in_memory_artifacts()
    yield artifacts
    artifacts.close()


def create(artifacts: ArtifactsApplication) -> UUID:
    return artifacts.create_artifact_once(
        idempotency_key=None,
        filename="a.txt",
        content_type="text/plain",
        size=1,
        sha256="0" * 64,
        storage_location="x",
    ).id


def gauge(metrics: ConsumerMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


def test_lag_is_the_head_minus_the_position_while_followed_events_wait(
    artifacts: ArtifactsApplication,
) -> None:
    for _ in range(3):
        create(artifacts)
    metrics = ConsumerMetrics("pipeline_worker")

    metrics.measure_lag(artifacts.recorder, CREATED, position=1)

    assert gauge(metrics, "event_store_head") == 3
    assert gauge(metrics, "consumer_position") == 1
    assert gauge(metrics, "consumer_lag_events") == 2


def test_lag_is_zero_when_only_events_the_consumer_skips_follow_its_position(
    artifacts: ArtifactsApplication,
) -> None:
    artifact_id = create(artifacts)
    artifacts.record_processing_started(artifact_id, run=0, workflow_id="artifact-x")
    metrics = ConsumerMetrics("pipeline_worker")

    metrics.measure_lag(artifacts.recorder, CREATED, position=1)

    assert gauge(metrics, "event_store_head") == 2
    assert gauge(metrics, "consumer_lag_events") == 0


def test_a_consumers_metrics_are_served_over_http() -> None:
    metrics = ConsumerMetrics("read_worker")
    metrics.lag.set(7)
    port = _free_port()

    serve_metrics(metrics.registry, "127.0.0.1", port)

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert "consumer_lag_events 7.0" in text
    assert "workflow_starts_total 0.0" in text


def test_a_port_in_use_costs_the_metrics_not_the_worker() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        with capture_logs() as logs:
            serve_metrics(
                ConsumerMetrics("read_worker").registry, "127.0.0.1", taken.getsockname()[1]
            )

    assert [line["event"] for line in logs] == ["metrics_unavailable"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
