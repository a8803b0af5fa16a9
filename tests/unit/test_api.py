"""The HTTP API through the real FastAPI app, over HTTP in memory (httpx's ASGI transport)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from application.artifacts import ArtifactsApplication
from infrastructure.api.app import TemporalProbe, create_app
from infrastructure.api.uploads import MAX_PARTS
from infrastructure.blobstore import LocalBlobStore
from tests.fakes import in_memory_artifacts

MAX_UPLOAD_BYTES = 4096
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


class Service:
    """The API with its real parts: the in-memory application and blobs under tmp_path."""

    def __init__(self, tmp_path: Path, app: FastAPI, artifacts: ArtifactsApplication) -> None:
        self.tmp_path = tmp_path
        self.blob_root = tmp_path / "blobs"
        self.app = app
        self.artifacts = artifacts

    def blob_files(self) -> list[str]:
        return sorted(
            path.relative_to(self.blob_root).as_posix()
            for path in self.blob_root.rglob("*")
            if path.is_file()
        )

    def all_files(self) -> list[Path]:
        return sorted(path for path in self.tmp_path.rglob("*") if path.is_file())


def build(tmp_path: Path, probe: TemporalProbe | None = None) -> Service:
    artifacts = in_memory_artifacts()
    app = create_app(
        artifacts=artifacts,
        blob_store=LocalBlobStore(tmp_path / "blobs"),
        max_upload_bytes=MAX_UPLOAD_BYTES,
        temporal_probe=probe,
    )
    return Service(tmp_path, app, artifacts)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = build(tmp_path)
    yield service
    service.artifacts.close()


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
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
    assert view["mime_type"] is None
    assert view["results"] is None
    assert view["failure"] is None
    assert view["workflow_id"] == f"artifact-{artifact_id}"
    assert view["links"] == {"self": location}


async def test_the_uploaded_bytes_are_stored_as_a_blob(
    client: httpx.AsyncClient, service: Service
) -> None:
    content = bytes(range(256)) * 8
    response = await upload(client, content)

    artifact = service.artifacts.get_artifact(uuid.UUID(response.json()["id"]))
    assert service.blob_files() == [artifact.storage_location]
    assert (service.blob_root / artifact.storage_location).read_bytes() == content


async def test_an_artifact_shows_its_recorded_outcome(
    client: httpx.AsyncClient, service: Service
) -> None:
    processed_id = (await upload(client, b"one")).json()["id"]
    failed_id = (await upload(client, b"two")).json()["id"]
    service.artifacts.record_processing_result(uuid.UUID(processed_id), mime_type="text/plain")
    service.artifacts.record_processing_failure(
        uuid.UUID(failed_id), reason="blob_missing", message="no blob"
    )

    processed = (await client.get(f"/artifacts/{processed_id}")).json()
    failed = (await client.get(f"/artifacts/{failed_id}")).json()

    assert processed["status"] == "processed"
    assert processed["mime_type"] == "text/plain"
    assert processed["results"] == {"mime_type": "text/plain"}
    assert failed["status"] == "failed"
    assert failed["failure"] == {"reason": "blob_missing", "message": "no blob"}


async def test_an_unknown_artifact_is_404_with_an_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/artifacts/{uuid.uuid4()}")

    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "artifact_not_found"
    assert body["detail"]


async def test_a_malformed_artifact_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/artifacts/not-a-uuid")

    assert response.status_code == 422


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


async def health_with(tmp_path: Path, temporal_probe: TemporalProbe) -> httpx.Response:
    service = build(tmp_path, temporal_probe)
    try:
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            return await client.get("/health")
    finally:
        service.artifacts.close()


async def test_health_is_degraded_without_temporal(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["event_store"]["ok"] is True
    assert body["temporal"] == {"ok": False, "detail": "not configured"}


async def test_health_is_ok_when_the_temporal_probe_succeeds(tmp_path: Path) -> None:
    probed = 0

    async def temporal_probe() -> None:
        nonlocal probed
        probed += 1

    response = await health_with(tmp_path, temporal_probe)

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "event_store": {"ok": True, "detail": "reachable"},
        "temporal": {"ok": True, "detail": "reachable"},
    }
    assert probed == 1


async def test_health_is_degraded_when_the_temporal_probe_fails(tmp_path: Path) -> None:
    async def temporal_probe() -> None:
        raise ConnectionRefusedError("temporal is down")

    response = await health_with(tmp_path, temporal_probe)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["event_store"]["ok"] is True
    assert body["temporal"]["ok"] is False
    assert "temporal is down" in body["temporal"]["detail"]
