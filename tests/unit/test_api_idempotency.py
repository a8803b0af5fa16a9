"""Idempotent uploads: a retried request gets the first request's artifact, never a second."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from eventsourcing.utils import get_topic

from application.artifacts import ArtifactsApplication, CreatedArtifact
from domain.artifact import ArtifactCreated
from infrastructure.blobstore import LocalBlobStore
from infrastructure.eventstore import application_env
from tests.fakes import in_memory_artifacts
from tests.support import make_settings
from tests.unit.test_api import MULTIPART, app_with, form, http_client, part

KEYS = ["key-of-client-a-000000", "key-of-client-b-111111"]
# Each client is its own tenant.
TENANT_KEYS = (f"alpha:{KEYS[0]}", f"beta:{KEYS[1]}")


def created_events(artifacts: ArtifactsApplication) -> list[uuid.UUID]:
    """The originator ids of every ``ArtifactCreated`` in the event store."""
    notifications = artifacts.recorder.select_notifications(
        start=None, limit=1000, topics=[get_topic(ArtifactCreated)]
    )
    return [uuid.UUID(str(n.originator_id)) for n in notifications]


class Api:
    def __init__(self, tmp_path: Path, *, dedupe_by_sha256: bool = False) -> None:
        self.blob_root = tmp_path / "blobs"
        self.artifacts = in_memory_artifacts()
        self.app = app_with(
            self.artifacts,
            LocalBlobStore(self.blob_root),
            max_upload_bytes=4096,
            api_keys=TENANT_KEYS,
            dedupe_by_sha256=dedupe_by_sha256,
        )

    def blobs(self) -> list[Path]:
        return [p for p in self.blob_root.rglob("*") if p.is_file()]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    api = Api(tmp_path)
    yield api
    api.artifacts.close()


@pytest.fixture
async def client(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(api.app) as client:
        yield client


async def upload(
    client: httpx.AsyncClient,
    content: bytes = b"hello",
    *,
    key: str | None,
    api_key: str = KEYS[0],
) -> httpx.Response:
    headers = {"Content-Type": MULTIPART, "Authorization": f"Bearer {api_key}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(
        "/artifacts", content=form(part("file", content, filename="a.txt")), headers=headers
    )


async def test_a_retried_upload_returns_the_same_artifact_marked_as_replayed(
    client: httpx.AsyncClient, api: Api
) -> None:
    first = await upload(client, key="order-42")
    retry = await upload(client, key="order-42")

    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["Location"] == first.headers["Location"]
    assert created_events(api.artifacts) == [uuid.UUID(first.json()["id"])]
    # The retry was answered before its body was stored.
    assert len(api.blobs()) == 1


async def test_a_retry_that_is_not_multipart_is_refused_although_its_key_is_recorded(
    client: httpx.AsyncClient,
) -> None:
    await upload(client, key="order-43")

    retry = await client.post(
        "/artifacts",
        headers={"Authorization": f"Bearer {KEYS[0]}", "Idempotency-Key": "order-43"},
    )

    assert retry.status_code == 415


async def test_concurrent_requests_with_one_key_create_exactly_one_artifact(
    client: httpx.AsyncClient, api: Api
) -> None:
    responses = await asyncio.gather(*(upload(client, key="same") for _ in range(8)))

    assert {r.json()["id"] for r in responses} == {responses[0].json()["id"]}
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert len(created_events(api.artifacts)) == 1


async def test_different_keys_and_no_key_create_different_artifacts(
    client: httpx.AsyncClient, api: Api
) -> None:
    responses = [
        await upload(client, key="one"),
        await upload(client, key="two"),
        await upload(client, key=None),
        await upload(client, key=None),
    ]

    assert [r.status_code for r in responses] == [202] * 4
    assert len({r.json()["id"] for r in responses}) == 4
    assert len(created_events(api.artifacts)) == 4


async def test_a_key_is_scoped_to_the_tenant_that_sent_it(
    client: httpx.AsyncClient, api: Api
) -> None:
    of_a = await upload(client, key="invoice-1", api_key=KEYS[0])
    of_b = await upload(client, key="invoice-1", api_key=KEYS[1])

    assert (of_a.status_code, of_b.status_code) == (202, 202)
    assert of_a.json()["id"] != of_b.json()["id"]


@pytest.mark.parametrize(
    "key",
    ["", "   ", "k" * 256, "tab\there", "new\x7fline", "caf\u00e9"],
    ids=["empty", "blank", "too-long", "control", "delete", "non-ascii"],
)
async def test_a_malformed_key_is_400_and_stores_nothing(
    client: httpx.AsyncClient, api: Api, key: str
) -> None:
    headers = {
        "Content-Type": MULTIPART,
        "Authorization": f"Bearer {KEYS[0]}",
    }
    # As bytes: a header can carry any octet, and httpx would refuse non-ASCII text.
    headers_bytes = {k.encode(): v.encode() for k, v in headers.items()}
    headers_bytes[b"Idempotency-Key"] = key.encode("utf-8")
    response = await client.post(
        "/artifacts", content=form(part("file", b"x", filename="a.txt")), headers=headers_bytes
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_idempotency_key"
    assert api.blobs() == []
    assert created_events(api.artifacts) == []


async def test_the_longest_allowed_key_is_accepted(client: httpx.AsyncClient) -> None:
    response = await upload(client, key="k" * 255)

    assert response.status_code == 202


# --- Race-safety in the event store itself ----------------------------------------------


def create(artifacts: ArtifactsApplication, key: str, location: str) -> CreatedArtifact:
    return artifacts.create_artifact_once(
        idempotency_key=key,
        filename="a.txt",
        content_type="text/plain",
        size=1,
        sha256="0" * 64,
        storage_location=location,
    )


def test_the_second_creation_with_a_key_loses_and_gets_the_first_artifact() -> None:
    artifacts = in_memory_artifacts()
    try:
        first = create(artifacts, "k", "aa/" + "a" * 32)
        second = create(artifacts, "k", "bb/" + "b" * 32)
        stored = artifacts.get_artifact(first.id)
    finally:
        artifacts.close()

    assert (first.replayed, second.replayed) == (False, True)
    assert second.id == first.id
    # The first request's blob is the artifact's; the loser's is an orphan.
    assert stored.storage_location == "aa/" + "a" * 32


def test_two_processes_racing_on_one_sqlite_store_create_one_artifact(tmp_path: Path) -> None:
    env = application_env(make_settings(tmp_path, "sqlite"))
    # Two applications on one file: two API processes, neither seeing the other's cache.
    one, two = ArtifactsApplication(env=env), ArtifactsApplication(env=env)
    try:
        first = create(one, "k", "aa/" + "a" * 32)
        second = create(two, "k", "bb/" + "b" * 32)
        ids = created_events(one)
    finally:
        one.close()
        two.close()

    assert second == CreatedArtifact(id=first.id, replayed=True)
    assert ids == [first.id]


# --- DEDUPE_BY_SHA256 -------------------------------------------------------------------


@pytest.fixture
async def deduping(tmp_path: Path) -> AsyncIterator[Api]:
    api = Api(tmp_path, dedupe_by_sha256=True)
    yield api
    api.artifacts.close()


async def test_with_dedupe_the_same_bytes_get_the_first_artifact_back(deduping: Api) -> None:
    async with http_client(deduping.app) as client:
        first = await upload(client, b"same bytes", key=None)
        again = await upload(client, b"same bytes", key=None)
        other = await upload(client, b"other bytes", key=None)

    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.json()["id"] != first.json()["id"]
    assert len(created_events(deduping.artifacts)) == 2
    # The duplicate's bytes were stored before their hash was known: an orphan to sweep.
    assert len(deduping.blobs()) == 3


async def test_with_dedupe_tenants_never_share_artifacts(deduping: Api) -> None:
    async with http_client(deduping.app) as client:
        of_a = await upload(client, b"same bytes", key=None, api_key=KEYS[0])
        of_b = await upload(client, b"same bytes", key=None, api_key=KEYS[1])

    assert (of_a.status_code, of_b.status_code) == (202, 202)
    assert of_a.json()["id"] != of_b.json()["id"]


async def test_without_dedupe_the_same_bytes_make_new_artifacts(
    client: httpx.AsyncClient, api: Api
) -> None:
    first = await upload(client, b"same bytes", key=None)
    again = await upload(client, b"same bytes", key=None)

    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["id"] != again.json()["id"]


async def test_the_openapi_document_describes_the_key_and_the_replay(
    client: httpx.AsyncClient,
) -> None:
    upload_op = (await client.get("/openapi.json")).json()["paths"]["/artifacts"]["post"]

    assert "Idempotency-Key" in [p["name"] for p in upload_op["parameters"]]
    assert {"200", "202", "401"} <= set(upload_op["responses"])


async def test_every_route_behind_the_key_documents_its_401(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    without_401 = [
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "401" not in operation["responses"]
    ]

    assert without_401 == ["GET /health"]
