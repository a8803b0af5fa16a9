"""Per-tenant limits through the real app: uploads per minute (429 with Retry-After) and
stored bytes (403 storage_quota_exceeded), both refused before the body is read when they
can be, and both off by default."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from domain.artifact import DEFAULT_TENANT
from infrastructure.api.quotas import RateLimited, UploadRate
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from tests.fakes import FakeCatalog, in_memory_artifacts
from tests.unit.test_api import (
    MULTIPART,
    READ_MODEL_WAIT,
    Service,
    app_with,
    form,
    http_client,
    part,
    upload,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StorageCatalog(FakeCatalog):
    """The catalog with the stored bytes of each tenant, and a record of who asked."""

    def __init__(self, stored: int = 0) -> None:
        super().__init__()
        self.stored = stored
        self.asked: list[str] = []

    def stored_bytes(self, tenant: str) -> int:
        self.asked.append(tenant)
        return self.stored


def build(
    tmp_path: Path, catalog: FakeCatalog | None, *, per_minute: int = 0, storage: int = 0
) -> Service:
    artifacts = in_memory_artifacts()
    blob_store = LocalBlobStore(tmp_path / "blobs")
    app = app_with(
        artifacts,
        blob_store,
        catalog=catalog,
        read_model_wait_seconds=READ_MODEL_WAIT,
        tenant_uploads_per_minute=per_minute,
        tenant_storage_bytes=storage,
    )
    return Service(tmp_path, app, artifacts, blob_store, None)


@pytest.fixture
def catalog() -> StorageCatalog:
    return StorageCatalog()


@pytest.fixture
def service(tmp_path: Path, catalog: StorageCatalog) -> Iterator[Service]:
    service = build(tmp_path, catalog, per_minute=2, storage=100)
    yield service
    service.artifacts.close()


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(service.app) as client:
        yield client


def nothing_stored(service: Service) -> bool:
    return service.blob_files() == [] and service.artifacts.recorder.max_notification_id() in (
        None,
        0,
    )


class CountedBody:
    """A request body that counts how many of its chunks the server read."""

    def __init__(self, content: bytes) -> None:
        self.body = form(part("file", content, filename="notes.txt"))
        self.chunks_read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 16):
            self.chunks_read += 1
            yield self.body[start : start + 16]


async def post(client: httpx.AsyncClient, body: CountedBody) -> httpx.Response:
    return await client.post("/artifacts", content=body, headers={"Content-Type": MULTIPART})


# --- Uploads per minute ---------------------------------------------------------------------


def test_the_rate_admits_its_uploads_a_minute_then_says_when_to_retry() -> None:
    clock = Clock()
    rate = UploadRate(2, clock=clock)
    rate.admit("alpha")
    clock.now += 20.5
    rate.admit("alpha")

    with pytest.raises(RateLimited) as refused:
        rate.admit("alpha")

    assert refused.value.retry_after == 40  # the first upload leaves the window in 39.5 s
    assert refused.value.headers == {"Retry-After": "40"}


def test_the_window_slides_so_a_client_that_waits_retry_after_gets_in() -> None:
    clock = Clock()
    rate = UploadRate(1, clock=clock)
    rate.admit("alpha")
    with pytest.raises(RateLimited) as refused:
        rate.admit("alpha")

    clock.now += refused.value.retry_after

    rate.admit("alpha")


def test_each_tenant_has_its_own_window_and_refusals_do_not_count() -> None:
    clock = Clock()
    rate = UploadRate(1, clock=clock)
    rate.admit("alpha")
    for _ in range(5):
        with pytest.raises(RateLimited):
            rate.admit("alpha")

    rate.admit("beta")
    clock.now += 60
    rate.admit("alpha")


def test_a_rate_of_zero_admits_everything() -> None:
    rate = UploadRate(0)
    for _ in range(1000):
        rate.admit("alpha")


async def test_an_upload_past_the_rate_is_429_with_retry_after_before_its_body_is_read(
    client: httpx.AsyncClient, service: Service
) -> None:
    assert (await upload(client, b"one")).status_code == 202
    assert (await upload(client, b"two")).status_code == 202
    body = CountedBody(b"three")

    response = await post(client, body)

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert body.chunks_read == 0
    assert len(service.blob_files()) == 2


# --- Stored bytes ---------------------------------------------------------------------------


async def test_a_tenant_at_its_storage_quota_gets_403_before_its_body_is_read(
    client: httpx.AsyncClient, service: Service, catalog: StorageCatalog
) -> None:
    catalog.stored = 100
    body = CountedBody(b"x")

    response = await post(client, body)

    assert response.status_code == 403
    assert response.json()["error"] == "storage_quota_exceeded"
    assert body.chunks_read == 0
    assert catalog.asked == [DEFAULT_TENANT]
    assert nothing_stored(service)


async def test_an_upload_that_would_cross_the_quota_is_refused_and_leaves_nothing_behind(
    client: httpx.AsyncClient, service: Service, catalog: StorageCatalog
) -> None:
    catalog.stored = 90

    response = await upload(client, b"eleven byte")

    assert response.status_code == 403
    assert response.json()["error"] == "storage_quota_exceeded"
    assert (
        "would take the tenant past its quota of 100 bytes (90 stored)"
        in (response.json()["detail"])
    )
    assert nothing_stored(service)


async def test_an_upload_that_fills_the_quota_exactly_is_accepted(
    client: httpx.AsyncClient, catalog: StorageCatalog
) -> None:
    catalog.stored = 90

    assert (await upload(client, b"ten bytes!")).status_code == 202


async def test_a_retry_of_a_completed_upload_is_answered_even_at_the_quota(
    client: httpx.AsyncClient, catalog: StorageCatalog
) -> None:
    content = form(part("file", b"hello", filename="a.txt"))
    headers = {"Content-Type": MULTIPART, "Idempotency-Key": "k-1"}
    first = await client.post("/artifacts", content=content, headers=headers)
    catalog.stored = 100

    retried = await client.post("/artifacts", content=content, headers=headers)

    assert (first.status_code, retried.status_code) == (202, 200)
    assert retried.json()["id"] == first.json()["id"]


async def test_the_stored_bytes_are_read_after_this_process_own_writes(
    client: httpx.AsyncClient, catalog: StorageCatalog
) -> None:
    await upload(client, b"first")
    catalog.waited.clear()

    await upload(client, b"second")

    [(position, timeout)] = catalog.waited[:1]
    assert position > 0
    assert timeout == READ_MODEL_WAIT


async def test_without_a_read_model_the_storage_quota_refuses_rather_than_guess(
    tmp_path: Path,
) -> None:
    service = build(tmp_path, None, storage=100)
    async with http_client(service.app) as client:
        response = await upload(client, b"x")

    assert response.status_code == 403
    assert nothing_stored(service)
    service.artifacts.close()


# --- Off by default, and documented -----------------------------------------------------------


async def test_without_limits_nothing_is_counted_or_refused(tmp_path: Path) -> None:
    catalog = StorageCatalog(stored=10**12)
    service = build(tmp_path, catalog)
    async with http_client(service.app) as client:
        codes = [(await upload(client, bytes([n]))).status_code for n in range(5)]

    assert codes == [202] * 5
    assert catalog.asked == []
    service.artifacts.close()


def test_the_limits_are_off_unless_set(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    assert (settings.tenant_uploads_per_minute, settings.tenant_storage_bytes) == (0, 0)


async def test_the_upload_route_documents_both_refusals(client: httpx.AsyncClient) -> None:
    responses = (await client.get("/openapi.json")).json()["paths"]["/artifacts"]["post"][
        "responses"
    ]

    assert {"403", "429"} <= set(responses)
    assert responses["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
