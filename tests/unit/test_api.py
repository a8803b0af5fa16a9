"""The HTTP API through the real FastAPI app, over HTTP in memory (httpx's ASGI transport)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactCatalog, ArtifactPage, ArtifactRow
from application.erasure import Eraser
from application.ports import BlobStore, ContentFacts, SummaryCandidate
from infrastructure.api.app import ApiOptions, ApiServices, TemporalProbe, create_app
from infrastructure.api.uploads import MAX_PARTS
from infrastructure.blobstore import LocalBlobStore
from infrastructure.processing.text import store_text
from tests.fakes import FakeCatalog, in_memory_artifacts

MAX_UPLOAD_BYTES = 4096
TEMPORAL_UI = "http://temporal.test:8080/"
NAMESPACE = "artifacts"
READ_MODEL_WAIT = 0.25
SUMMARY = SummaryCandidate(text="Hello.", source="lexrank", model="lexrank", pipeline_version="v1")
BOUNDARY = "test-boundary-7MA4YWxkTrZu0gW"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
BLOB_FILE = re.compile(r"[0-9a-f]{2}/[0-9a-f]{32}")


def part(name: str, content: bytes, filename: str | None = None, content_type: str = "") -> bytes:
    """One multipart part, byte for byte as a client could send it (no escaping)."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    headers = f"Content-Disposition: {disposition}\r\n"
    if content_type:
        headers += f"Content-Type: {content_type}\r\n"
    return f"--{BOUNDARY}\r\n{headers}\r\n".encode() + content + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def app_with(
    artifacts: ArtifactsApplication,
    blob_store: BlobStore,
    *,
    catalog: ArtifactCatalog | None = None,
    temporal_probe: TemporalProbe | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    eraser: Eraser | None = None,
    **options: Any,
) -> FastAPI:
    """The API app on these services, with ``ApiOptions`` from the keywords left over."""
    return create_app(
        ApiServices(
            artifacts=artifacts,
            blob_store=blob_store,
            catalog=catalog,
            temporal_probe=temporal_probe,
            options=ApiOptions(max_upload_bytes=max_upload_bytes, **options),
            eraser=eraser,
        )
    )


class Service:
    """The API with its real parts: the in-memory application and blobs under tmp_path.

    The read model is a ``FakeCatalog`` (its real adapters are tested in integration).
    """

    def __init__(
        self,
        tmp_path: Path,
        app: FastAPI,
        artifacts: ArtifactsApplication,
        blob_store: LocalBlobStore,
        catalog: FakeCatalog | None,
    ) -> None:
        self.tmp_path = tmp_path
        self.blob_root = tmp_path / "blobs"
        self.app = app
        self.artifacts = artifacts
        self.blob_store = blob_store
        self.catalog = catalog

    def blob_files(self) -> list[str]:
        return sorted(
            path.relative_to(self.blob_root).as_posix()
            for path in self.blob_root.rglob("*")
            if path.is_file()
        )

    def all_files(self) -> list[Path]:
        return sorted(path for path in self.tmp_path.rglob("*") if path.is_file())


def build(
    tmp_path: Path,
    probe: TemporalProbe | None = None,
    catalog: FakeCatalog | None = None,
) -> Service:
    artifacts = in_memory_artifacts()
    blob_store = LocalBlobStore(tmp_path / "blobs")
    app = app_with(
        artifacts,
        blob_store,
        temporal_probe=probe,
        catalog=catalog,
        read_model_wait_seconds=READ_MODEL_WAIT,
        temporal_ui_url=TEMPORAL_UI,
        temporal_namespace=NAMESPACE,
    )
    return Service(tmp_path, app, artifacts, blob_store, catalog)


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def service(tmp_path: Path, catalog: FakeCatalog) -> Iterator[Service]:
    service = build(tmp_path, catalog=catalog)
    yield service
    service.artifacts.close()


@asynccontextmanager
async def http_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(service.app) as client:
        yield client


async def upload(
    client: httpx.AsyncClient, content: bytes, filename: str = "notes.txt"
) -> httpx.Response:
    return await client.post(
        "/artifacts",
        content=form(part("file", content, filename=filename, content_type="text/plain")),
        headers={"Content-Type": MULTIPART},
    )


async def test_an_upload_is_accepted_with_a_link_to_the_artifact(
    client: httpx.AsyncClient,
) -> None:
    response = await upload(client, b"hello, world\n")

    assert response.status_code == 202
    body = response.json()
    artifact_id = uuid.UUID(body["id"])
    assert body["status"] == "uploaded"
    assert response.headers["Location"] == f"/artifacts/{artifact_id}"
    assert body["links"] == {"self": f"/artifacts/{artifact_id}"}


async def test_an_uploaded_artifact_shows_what_was_received(client: httpx.AsyncClient) -> None:
    content = b"hello, world\n"
    location = (await upload(client, content, filename="notes.txt")).headers["Location"]

    response = await client.get(location)

    assert response.status_code == 200
    view = response.json()
    artifact_id = location.rsplit("/", 1)[-1]
    assert view["id"] == artifact_id
    assert view["filename"] == "notes.txt"
    assert view["content_type"] == "text/plain"
    assert view["size"] == len(content)
    assert view["sha256"] == hashlib.sha256(content).hexdigest()
    assert view["status"] == "uploaded"
    assert view["run"] == 0
    assert view["mime_type"] is None
    assert view["results"] is None
    assert view["summary"] is None
    assert view["failure"] is None
    assert view["workflow_id"] == f"artifact-{artifact_id}"
    assert [item["type"] for item in view["history"]] == ["ArtifactCreated"]
    assert view["created_at"] == view["updated_at"] == view["history"][0]["at"]
    assert view["links"] == {
        "self": location,
        "content": f"{location}/content",
        "text": None,
        "markdown": None,
        "chunks": None,
        "pages": None,
        "reprocess": f"{location}/reprocess",
        "cancel": f"{location}/cancel",
        "delete": location,
        "temporal": f"http://temporal.test:8080/namespaces/{NAMESPACE}/workflows/"
        f"artifact-{artifact_id}",
    }


async def test_the_uploaded_bytes_are_stored_as_a_blob(
    client: httpx.AsyncClient, service: Service
) -> None:
    content = bytes(range(256)) * 8
    response = await upload(client, content)

    artifact = service.artifacts.get_artifact(uuid.UUID(response.json()["id"]))
    assert service.blob_files() == [artifact.storage_location]
    assert (service.blob_root / artifact.storage_location).read_bytes() == content


# --- What happened to an artifact -------------------------------------------------------


def record_text_result(service: Service, artifact_id: str, *pieces: str) -> None:
    """Stores ``pieces`` as text blobs and records them as the run's result, as workflows do."""
    locations = [store_text(service.blob_store, piece).location for piece in pieces]
    facts = ContentFacts(
        mime_type="text/plain",
        kind="text",
        page_count=None,
        char_count=sum(map(len, pieces)),
        text_locations=locations,
        details={"encoding": "utf-8", "truncated": False},
    )
    uid = uuid.UUID(artifact_id)
    service.artifacts.record_processing_started(uid, run=0, workflow_id=f"artifact-{uid}")
    service.artifacts.record_processing_result(uid, run=0, facts=facts, summary=SUMMARY)


def record_failure(service: Service, artifact_id: str) -> None:
    service.artifacts.record_processing_failure(
        uuid.UUID(artifact_id), run=0, reason="blob_missing", message="no blob"
    )


async def test_a_processed_artifact_shows_its_results_summary_history_and_links(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"Hello.\nWorld.\n")).json()["id"]
    record_text_result(service, artifact_id, "Hello.\nWorld.\n")

    view = (await client.get(f"/artifacts/{artifact_id}")).json()

    assert view["status"] == "processed"
    assert view["mime_type"] == "text/plain"
    assert view["results"] == {
        "mime_type": "text/plain",
        "kind": "text",
        "page_count": None,
        "char_count": 14,
        "details": {"encoding": "utf-8", "truncated": False},
        "language": None,
        "warnings": [],
    }
    assert view["results"]["details"]["truncated"] is False
    assert view["summary"] == {
        "text": "Hello.",
        "source": "lexrank",
        "model": "lexrank",
        "pipeline_version": "v1",
    }
    assert view["failure"] is None
    assert [item["type"] for item in view["history"]] == [
        "ArtifactCreated",
        "ProcessingStarted",
        "ArtifactProcessed",
        "SummaryCandidateAdded",
    ]
    assert [item["version"] for item in view["history"]] == [0, 1, 2, 3]
    assert view["updated_at"] == view["history"][-1]["at"]
    assert view["links"]["text"] == f"/artifacts/{artifact_id}/text"


async def test_a_failed_artifact_shows_its_failure_and_no_results(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"two")).json()["id"]
    record_failure(service, artifact_id)

    view = (await client.get(f"/artifacts/{artifact_id}")).json()

    assert view["status"] == "failed"
    assert view["failure"] == {"reason": "blob_missing", "message": "no blob"}
    assert view["results"] is None
    assert view["summary"] is None
    assert [item["type"] for item in view["history"]][-1] == "ArtifactProcessingFailed"


async def test_the_temporal_link_names_the_namespace_and_the_workflow_of_the_run(
    tmp_path: Path,
) -> None:
    artifacts = in_memory_artifacts()
    app = app_with(
        artifacts,
        LocalBlobStore(tmp_path / "blobs"),
        temporal_ui_url="https://temporal.example.com/ui",
        temporal_namespace="team a",
    )
    try:
        async with http_client(app) as client:
            artifact_id = (await upload(client, b"hello")).json()["id"]
            view = (await client.get(f"/artifacts/{artifact_id}")).json()
    finally:
        artifacts.close()

    assert view["links"]["temporal"] == (
        f"https://temporal.example.com/ui/namespaces/team%20a/workflows/artifact-{artifact_id}"
    )


# --- The content and the extracted text, as attachments ---------------------------------


DISPOSITION = re.compile(r"""attachment; filename="([^"]*)"; filename\*=UTF-8''(\S+)""")


def attachment_names(response: httpx.Response) -> tuple[str, str]:
    """The plain filename and the UTF-8 ``filename*`` (RFC 6266) of an attachment."""
    header = response.headers["Content-Disposition"]
    found = DISPOSITION.fullmatch(header)
    assert found is not None, header
    return found.group(1), unquote(found.group(2), errors="strict")


async def test_the_content_is_the_exact_uploaded_bytes_as_an_attachment(
    client: httpx.AsyncClient,
) -> None:
    content = bytes(range(256)) * 8
    artifact_id = (await upload(client, content, filename="data.bin")).json()["id"]

    response = await client.get(f"/artifacts/{artifact_id}/content")

    assert response.status_code == 200
    assert response.content == content
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert attachment_names(response) == ("data.bin", "data.bin")


async def test_a_hostile_filename_comes_back_as_a_safe_content_disposition(
    client: httpx.AsyncClient,
) -> None:
    hostile = "..\\..\\<img src=x onerror=alert(1)>; naïve résumé.html"
    artifact_id = (await upload(client, b"<html>", filename=hostile)).json()["id"]

    response = await client.get(f"/artifacts/{artifact_id}/content")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].isascii()
    plain, utf8 = attachment_names(response)
    # One quoted ASCII string with nothing to break out of it with, and the stored
    # (sanitised) name percent-encoded: no path, no markup, no header of its own.
    assert plain == "_img src=x onerror=alert(1)_; na_ve r_sum_.html"
    assert utf8 == "_img src=x onerror=alert(1)_; naïve résumé.html"


async def test_the_content_of_an_unknown_artifact_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/artifacts/{uuid.uuid4()}/content")

    assert response.status_code == 404
    assert response.json()["error"] == "artifact_not_found"


async def test_content_whose_blob_is_gone_is_404(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"soon gone")).json()["id"]
    for blob in service.blob_files():
        (service.blob_root / blob).unlink()

    response = await client.get(f"/artifacts/{artifact_id}/content")

    assert response.status_code == 404
    assert response.json()["error"] == "artifact_not_found"


async def test_there_is_no_text_before_processing(client: httpx.AsyncClient) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]

    response = await client.get(f"/artifacts/{artifact_id}/text")

    assert response.status_code == 404
    assert response.json()["error"] == "no_text"


async def test_the_text_is_the_stored_extracted_text_in_order_as_an_attachment(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"%PDF", filename="report.pdf")).json()["id"]
    record_text_result(service, artifact_id, "Page one, café.\f", "Page two.\f")

    response = await client.get(f"/artifacts/{artifact_id}/text")

    assert response.status_code == 200
    assert response.content.decode("utf-8") == "Page one, café.\fPage two.\f"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert attachment_names(response) == ("report.txt", "report.txt")


async def test_there_is_no_text_for_a_failed_artifact(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    record_failure(service, artifact_id)

    response = await client.get(f"/artifacts/{artifact_id}/text")

    assert response.status_code == 404
    assert response.json()["error"] == "no_text"


# --- Reprocessing -----------------------------------------------------------------------


async def test_reprocessing_is_409_while_the_artifact_is_uploaded_or_processing(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]

    while_uploaded = await client.post(f"/artifacts/{artifact_id}/reprocess")
    service.artifacts.record_processing_started(
        uuid.UUID(artifact_id), run=0, workflow_id=f"artifact-{artifact_id}"
    )
    while_processing = await client.post(f"/artifacts/{artifact_id}/reprocess")

    for response in (while_uploaded, while_processing):
        assert response.status_code == 409
        assert response.json()["error"] == "reprocessing_not_allowed"
    assert "processing" in while_processing.json()["detail"]
    assert service.artifacts.get_artifact(uuid.UUID(artifact_id)).run == 0


async def test_reprocessing_an_artifact_with_an_outcome_opens_run_one(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    record_failure(service, artifact_id)

    response = await client.post(f"/artifacts/{artifact_id}/reprocess")

    assert response.status_code == 202
    assert response.json() == {
        "id": artifact_id,
        "run": 1,
        "status": "uploaded",
        "workflow_id": f"artifact-{artifact_id}-run-1",
        "links": {"self": f"/artifacts/{artifact_id}"},
    }
    view = (await client.get(f"/artifacts/{artifact_id}")).json()
    assert (view["run"], view["status"], view["failure"]) == (1, "uploaded", None)
    assert view["workflow_id"] == f"artifact-{artifact_id}-run-1"
    assert view["links"]["temporal"].endswith(f"/workflows/artifact-{artifact_id}-run-1")
    assert view["history"][-1]["type"] == "ReprocessingRequested"


async def test_reprocessing_a_processed_artifact_clears_its_results_and_text(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    record_text_result(service, artifact_id, "hello")

    assert (await client.post(f"/artifacts/{artifact_id}/reprocess")).status_code == 202

    view = (await client.get(f"/artifacts/{artifact_id}")).json()
    assert (view["results"], view["summary"], view["links"]["text"]) == (None, None, None)
    assert (await client.get(f"/artifacts/{artifact_id}/text")).status_code == 404


async def test_reprocessing_a_cancelled_artifact_opens_the_next_run(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    assert (await client.post(f"/artifacts/{artifact_id}/cancel")).status_code == 202
    service.artifacts.record_processing_cancelled(
        uuid.UUID(artifact_id), run=0, reason="cancelled", message="on request"
    )

    response = await client.post(f"/artifacts/{artifact_id}/reprocess")

    assert response.status_code == 202
    assert response.json()["workflow_id"] == f"artifact-{artifact_id}-run-1"


# --- Cancelling -------------------------------------------------------------------------


async def test_cancelling_a_run_in_flight_is_202_with_the_run_and_its_workflow(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    service.artifacts.record_processing_started(
        uuid.UUID(artifact_id), run=0, workflow_id=f"artifact-{artifact_id}"
    )

    response = await client.post(f"/artifacts/{artifact_id}/cancel")
    again = await client.post(f"/artifacts/{artifact_id}/cancel")

    assert response.status_code == again.status_code == 202
    assert response.json() == {
        "id": artifact_id,
        "run": 0,
        "status": "processing",
        "workflow_id": f"artifact-{artifact_id}",
        "links": {"self": f"/artifacts/{artifact_id}"},
    }
    view = (await client.get(f"/artifacts/{artifact_id}")).json()
    # Asking twice records the request once.
    assert [item["type"] for item in view["history"]][-1:] == ["CancellationRequested"]
    assert [item["type"] for item in view["history"]].count("CancellationRequested") == 1


async def test_a_cancelled_run_shows_the_status_cancelled_and_its_reason(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    assert (await client.post(f"/artifacts/{artifact_id}/cancel")).status_code == 202
    service.artifacts.record_processing_cancelled(
        uuid.UUID(artifact_id), run=0, reason="cancelled", message="on request"
    )

    view = (await client.get(f"/artifacts/{artifact_id}")).json()

    assert view["status"] == "cancelled"
    assert view["failure"] == {"reason": "cancelled", "message": "on request"}


async def test_cancelling_an_artifact_with_an_outcome_is_409(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    record_failure(service, artifact_id)

    response = await client.post(f"/artifacts/{artifact_id}/cancel")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "cancellation_not_allowed"


async def test_cancelling_an_unknown_artifact_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/artifacts/{uuid.uuid4()}/cancel")

    assert response.status_code == 404


async def test_reprocessing_an_unknown_artifact_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/artifacts/{uuid.uuid4()}/reprocess")

    assert response.status_code == 404
    assert response.json()["error"] == "artifact_not_found"


# --- Listing, from the read model -------------------------------------------------------


def listed(artifact_id: uuid.UUID, filename: str) -> ArtifactRow:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return ArtifactRow(
        id=artifact_id,
        filename=filename,
        status="processed",
        mime_type="application/pdf",
        size=1234,
        page_count=3,
        failure_reason=None,
        has_summary=True,
        created_at=at,
        updated_at=at,
    )


async def test_the_list_shows_the_catalogs_page_with_links_and_its_next_cursor(
    tmp_path: Path,
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    catalog = FakeCatalog(
        {
            None: ArtifactPage(items=[listed(first, "a.pdf")], next_cursor="page-2"),
            "page-2": ArtifactPage(items=[listed(second, "b.pdf")], next_cursor=None),
        }
    )
    service = build(tmp_path, catalog=catalog)
    try:
        async with http_client(service.app) as client:
            page_one = (await client.get("/artifacts")).json()
            page_two = (await client.get("/artifacts", params={"cursor": "page-2"})).json()
    finally:
        service.artifacts.close()

    assert page_one == {
        "items": [
            {
                "id": str(first),
                "tenant": "default",
                "filename": "a.pdf",
                "status": "processed",
                "mime_type": "application/pdf",
                "size": 1234,
                "page_count": 3,
                "failure_reason": None,
                "has_summary": True,
                "created_at": "2026-01-02T03:04:05Z",
                "updated_at": "2026-01-02T03:04:05Z",
                "links": {"self": f"/artifacts/{first}"},
            }
        ],
        "next_cursor": "page-2",
    }
    assert [item["id"] for item in page_two["items"]] == [str(second)]
    assert page_two["next_cursor"] is None


async def test_the_list_passes_its_filters_limit_and_cursor_to_the_catalog(
    client: httpx.AsyncClient, catalog: FakeCatalog
) -> None:
    catalog.pages["c-1"] = ArtifactPage(items=[], next_cursor=None)

    response = await client.get(
        "/artifacts",
        params={"status": "failed", "mime_type": "application/pdf", "limit": 7, "cursor": "c-1"},
    )

    assert response.status_code == 200
    assert catalog.listed == [
        {
            "status": "failed",
            "mime_type": "application/pdf",
            "limit": 7,
            "cursor": "c-1",
            # Anonymous development is an admin: every tenant's (there is only one).
            "tenant": None,
        }
    ]


async def test_the_list_asks_for_fifty_of_any_status_by_default(
    client: httpx.AsyncClient, catalog: FakeCatalog
) -> None:
    await client.get("/artifacts")

    assert catalog.listed == [
        {"status": None, "mime_type": None, "limit": 50, "cursor": None, "tenant": None}
    ]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"status": "deleted"}, {"cursor": "c" * 513}],
    ids=["limit-0", "limit-201", "unknown-status", "long-cursor"],
)
async def test_a_list_query_out_of_bounds_is_422_and_asks_no_catalog(
    client: httpx.AsyncClient, catalog: FakeCatalog, params: dict[str, str | int]
) -> None:
    response = await client.get("/artifacts", params=params)

    assert response.status_code == 422
    assert catalog.listed == []


async def test_a_cursor_the_catalog_never_handed_out_is_400_invalid_cursor(
    client: httpx.AsyncClient, catalog: FakeCatalog
) -> None:
    response = await client.get("/artifacts", params={"cursor": "forged"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_cursor"
    assert catalog.listed[-1]["cursor"] == "forged"


async def test_the_list_does_not_wait_for_the_read_model_before_any_write(
    client: httpx.AsyncClient, catalog: FakeCatalog
) -> None:
    await client.get("/artifacts")

    assert catalog.waited == []


async def test_the_list_waits_until_the_read_model_has_this_processs_last_write(
    client: httpx.AsyncClient, service: Service, catalog: FakeCatalog
) -> None:
    await upload(client, b"one")
    first = service.artifacts.last_written_position
    await client.get("/artifacts")
    await upload(client, b"two")
    second = service.artifacts.last_written_position

    await client.get("/artifacts")

    assert 0 < first < second
    assert catalog.waited == [(first, READ_MODEL_WAIT), (second, READ_MODEL_WAIT)]


async def test_the_list_is_served_even_when_the_read_model_lags_behind(
    client: httpx.AsyncClient, catalog: FakeCatalog
) -> None:
    catalog.caught_up = False
    await upload(client, b"one")

    response = await client.get("/artifacts")

    assert response.status_code == 200
    assert len(catalog.waited) == 1
    assert len(catalog.listed) == 1


async def test_the_list_is_503_without_a_read_model(tmp_path: Path) -> None:
    service = build(tmp_path, catalog=None)
    try:
        async with http_client(service.app) as client:
            response = await client.get("/artifacts")
    finally:
        service.artifacts.close()

    assert response.status_code == 503
    assert response.json()["error"] == "read_model_unavailable"


async def test_an_unknown_artifact_is_404_with_an_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/artifacts/{uuid.uuid4()}")

    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "artifact_not_found"
    assert body["detail"]


async def test_a_malformed_artifact_id_is_422_with_the_documented_error_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/artifacts/not-a-uuid")

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["detail"].startswith("path.artifact_id: ")


async def test_a_wrong_method_is_405_allowing_every_method_of_the_path(
    client: httpx.AsyncClient,
) -> None:
    # GET and POST /artifacts are two routes; Starlette alone would name only the first.
    response = await client.request("OPTIONS", "/artifacts")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


async def test_the_openapi_document_gives_each_download_its_content_type(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    def content_types(path: str) -> list[str]:
        return list(paths[path]["get"]["responses"]["200"]["content"])

    assert content_types("/artifacts/{artifact_id}/content") == ["application/octet-stream"]
    assert content_types("/artifacts/{artifact_id}/text") == ["text/plain; charset=utf-8"]
    assert content_types("/metrics")[0].startswith("text/plain")


async def test_a_file_over_the_limit_is_413_and_nothing_is_stored(
    client: httpx.AsyncClient, service: Service
) -> None:
    response = await upload(client, b"x" * (MAX_UPLOAD_BYTES + 1))

    assert response.status_code == 413
    assert response.json()["error"] == "upload_too_large"
    assert service.blob_files() == []


async def test_a_file_exactly_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await upload(client, b"x" * MAX_UPLOAD_BYTES)

    assert response.status_code == 202


async def test_a_declared_content_length_over_the_limit_is_413_before_reading(
    client: httpx.AsyncClient, service: Service
) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        sent += 1
        yield form(part("file", b"small", filename="a.txt"))

    response = await client.post(
        "/artifacts",
        content=body(),
        headers={"Content-Type": MULTIPART, "Content-Length": str(10 * 1024 * 1024)},
    )

    assert response.status_code == 413
    assert sent == 0
    assert service.blob_files() == []


async def test_a_chunked_upload_over_the_limit_is_413_as_soon_as_it_crosses_it(
    client: httpx.AsyncClient, service: Service
) -> None:
    chunk = 1024
    total_chunks = 1024  # 1 MiB offered, far past the limit and its framing allowance
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield part("file", b"", filename="big")[:-2]  # the part's head, then its data
        for _ in range(total_chunks):
            sent += 1
            yield b"x" * chunk

    request = client.build_request(
        "POST", "/artifacts", content=body(), headers={"Content-Type": MULTIPART}
    )
    assert "content-length" not in request.headers
    response = await client.send(request)

    assert response.status_code == 413
    assert response.json()["error"] == "upload_too_large"
    assert sent < total_chunks
    assert sent * chunk <= MAX_UPLOAD_BYTES + 2 * chunk
    assert service.blob_files() == []


async def test_a_chunked_body_over_the_limit_is_413_even_outside_the_file(
    client: httpx.AsyncClient, service: Service
) -> None:
    chunk = 1024
    total_chunks = 1024
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield part("comment", b"", filename=None)[:-2]
        for _ in range(total_chunks):
            sent += 1
            yield b"y" * chunk

    response = await client.post("/artifacts", content=body(), headers={"Content-Type": MULTIPART})

    assert response.status_code == 413
    assert sent < total_chunks
    assert service.blob_files() == []


async def test_a_body_that_is_not_multipart_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/artifacts", json={"file": "aGVsbG8="})

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


async def test_multipart_without_a_boundary_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/artifacts",
        content=form(part("file", b"hello", filename="a.txt")),
        headers={"Content-Type": "multipart/form-data"},
    )

    assert response.status_code == 415


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (form(part("file", b"", filename="empty.txt")), "empty"),
        (form(part("attachment", b"hello", filename="a.txt")), "no 'file' field"),
        (
            form(part("file", b"one", filename="1.txt"), part("file", b"two", filename="2.txt")),
            "one file per request",
        ),
        (
            form(*(part(f"field{i}", b"v") for i in range(MAX_PARTS)), part("file", b"hello")),
            "too many form parts",
        ),
        (form(part("file", b"hello", filename="a.txt"))[:-20], "incomplete"),
        (b"this is not multipart at all", "malformed|incomplete"),
    ],
    ids=["empty-file", "no-file-field", "two-files", "too-many-parts", "truncated", "garbage"],
)
async def test_a_bad_form_is_400_and_nothing_is_stored(
    client: httpx.AsyncClient, service: Service, body: bytes, complaint: str
) -> None:
    response = await client.post("/artifacts", content=body, headers={"Content-Type": MULTIPART})

    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "bad_upload"
    assert re.search(complaint, error["detail"])
    assert service.blob_files() == []
    assert service.artifacts.recorder.max_notification_id() in (None, 0)


async def test_other_form_fields_are_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/artifacts",
        content=form(part("comment", b"hi"), part("file", b"hello", filename="a.txt")),
        headers={"Content-Type": MULTIPART},
    )

    assert response.status_code == 202


async def test_a_hostile_filename_is_sanitised_and_never_becomes_a_path(
    client: httpx.AsyncClient, service: Service
) -> None:
    response = await upload(client, b"payload", filename="../../escaped\x07\x1b.txt")

    assert response.status_code == 202
    view = (await client.get(response.headers["Location"])).json()
    assert view["filename"] == "escaped_.txt"
    [blob] = service.blob_files()
    assert BLOB_FILE.fullmatch(blob)
    assert service.all_files() == [service.blob_root / blob]
    assert not (service.tmp_path.parent / "escaped_.txt").exists()


async def ready_with(tmp_path: Path, temporal_probe: TemporalProbe) -> httpx.Response:
    service = build(tmp_path, temporal_probe)
    try:
        async with http_client(service.app) as client:
            return await client.get("/ready")
    finally:
        service.artifacts.close()


async def test_health_answers_without_checking_anything(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_is_degraded_without_temporal(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["event_store"]["ok"] is True
    assert body["blob_store"]["ok"] is True
    assert body["temporal"] == {"ok": False, "detail": "not configured"}


async def test_ready_is_ok_when_the_temporal_probe_succeeds(tmp_path: Path) -> None:
    probed = 0

    async def temporal_probe() -> None:
        nonlocal probed
        probed += 1

    response = await ready_with(tmp_path, temporal_probe)

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "event_store": {"ok": True, "detail": "reachable"},
        "blob_store": {"ok": True, "detail": "reachable"},
        "temporal": {"ok": True, "detail": "reachable"},
    }
    assert probed == 1


async def test_ready_is_degraded_when_the_temporal_probe_fails(tmp_path: Path) -> None:
    async def temporal_probe() -> None:
        raise ConnectionRefusedError("temporal is down")

    response = await ready_with(tmp_path, temporal_probe)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["event_store"]["ok"] is True
    assert body["temporal"]["ok"] is False
    assert "temporal is down" in body["temporal"]["detail"]


async def test_ready_is_degraded_when_the_blob_directory_is_gone(
    tmp_path: Path, service: Service, client: httpx.AsyncClient
) -> None:
    (service.blob_root / "tmp").rmdir()

    response = await client.get("/ready")

    assert response.status_code == 503
    assert response.json()["blob_store"]["ok"] is False
