"""Watching the API: request ids and artifact ids on its log lines, Prometheus metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from application.ports import ContentFacts
from tests.unit.test_api import MULTIPART, Service, build, form, http_client, part, upload


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = build(tmp_path)
    yield service
    service.artifacts.close()


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(service.app) as client:
        yield client


@pytest.fixture
def logs() -> Iterator[list[structlog.typing.EventDict]]:
    # capture_logs replaces the processors: merge_contextvars is kept so that the context
    # bound by the middleware and the routes shows, as it does with the real configuration.
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        yield captured


async def test_an_uploads_log_line_carries_the_request_id_and_the_artifact_id(
    client: httpx.AsyncClient, logs: list[structlog.typing.EventDict]
) -> None:
    response = await client.post(
        "/artifacts",
        content=form(part("file", b"hello", filename="notes.txt", content_type="text/plain")),
        headers={"Content-Type": MULTIPART, "X-Request-ID": "req-42"},
    )

    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "req-42"
    [created] = [line for line in logs if line["event"] == "artifact_created"]
    assert created["request_id"] == "req-42"
    assert created["artifact_id"] == response.json()["id"]


async def test_a_request_without_a_sane_request_id_gets_a_new_one(
    client: httpx.AsyncClient,
) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "bad id\nforged: line"})
    none = await client.get("/health")

    assert given.headers["X-Request-ID"] != "bad id\nforged: line"
    assert len(given.headers["X-Request-ID"]) == 32
    assert none.headers["X-Request-ID"] != given.headers["X-Request-ID"]


async def test_reprocessing_and_reading_log_the_artifact_id(
    client: httpx.AsyncClient, service: Service, logs: list[structlog.typing.EventDict]
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    _finish_processing(service, artifact_id)

    response = await client.post(f"/artifacts/{artifact_id}/reprocess")

    assert response.status_code == 202
    [requested] = [line for line in logs if line["event"] == "reprocessing_requested"]
    assert requested["artifact_id"] == artifact_id
    assert requested["request_id"] == response.headers["X-Request-ID"]


async def test_metrics_count_requests_by_route_template_and_uploads_by_bytes(
    client: httpx.AsyncClient,
) -> None:
    artifact_id = (await upload(client, b"12345")).json()["id"]
    await client.get(f"/artifacts/{artifact_id}")
    await client.get("/no/such/path")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'http_requests_total{method="GET",route="/artifacts/{artifact_id}",status="200"} 1.0'
        in text
    )
    assert 'http_requests_total{method="POST",route="/artifacts",status="202"} 1.0' in text
    assert 'http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'http_request_duration_seconds_count{method="POST",route="/artifacts"} 1.0' in text
    assert "artifact_uploads_total 1.0" in text
    assert "artifact_upload_bytes_total 5.0" in text
    assert artifact_id not in text


def _finish_processing(service: Service, artifact_id: str) -> None:
    uid = UUID(artifact_id)
    service.artifacts.record_processing_started(uid, run=0, workflow_id=f"artifact-{uid}")
    service.artifacts.record_processing_result(
        uid,
        run=0,
        facts=ContentFacts(mime_type="text/plain", kind="text", page_count=None, char_count=5),
        summary=None,
    )
