"""The admin routes: the workers' dead letters, and retrying one, through the real app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from eventsourcing.persistence import Tracking
from pydantic import SecretStr

from application.artifacts import ArtifactsApplication
from infrastructure.api.app import create_app
from infrastructure.api.dependencies import ApiOptions, ApiServices
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.eventstore import tracking_recorder
from infrastructure.eventstore.dead_letters import DeadLetter, DeadLetters, DeadLetterStore
from tests.fakes import FakeCatalog, in_memory_artifacts
from tests.unit.test_api import http_client

KEY, ADMIN = "plain-key-0123456789", "admin-key-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeadLetterStore]:
    store = tracking_recorder(Settings(data_dir=tmp_path), "pipeline_worker")
    for position in (3, 7):
        letter = DeadLetter(
            position=position,
            topic="domain.artifact:Artifact.ArtifactCreated",
            originator_id=str(uuid.uuid4()),
            originator_version=0,
            error="MapperDeserialisationError: does not decode",
        )
        store.advance(Tracking(ArtifactsApplication.name, position), [letter])
    yield store
    store.close()


async def _client(
    tmp_path: Path,
    store: DeadLetterStore,
    api_keys: tuple[str, ...] = (),
    admin_keys: tuple[str, ...] = (),
) -> AsyncIterator[httpx.AsyncClient]:
    artifacts = in_memory_artifacts()
    app = create_app(
        ApiServices(
            artifacts=artifacts,
            blob_store=LocalBlobStore(tmp_path / "blobs"),
            catalog=FakeCatalog(),
            options=ApiOptions(max_upload_bytes=64, api_keys=api_keys, admin_keys=admin_keys),
            dead_letters=DeadLetters({"pipeline_worker": store}),
        )
    )
    try:
        async with http_client(app) as client:
            yield client
    finally:
        artifacts.close()


@pytest.fixture
async def client(tmp_path: Path, store: DeadLetterStore) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, store, api_keys=(KEY,), admin_keys=(ADMIN,)):
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_an_admin_key_lists_both_dead_letters(client: httpx.AsyncClient) -> None:
    response = await client.get("/dead-letters", headers=bearer(ADMIN))
    assert response.status_code == 200
    items = response.json()["items"]
    assert [(i["consumer"], i["position"], i["status"]) for i in items] == [
        ("pipeline_worker", 3, "open"),
        ("pipeline_worker", 7, "open"),
    ]
    assert items[0]["error"].startswith("MapperDeserialisationError")


async def test_a_plain_key_is_refused_as_admin_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/dead-letters", headers=bearer(KEY))
    assert response.status_code == 403
    assert response.json()["error"] == "admin_only"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
async def test_without_a_valid_key_it_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/dead-letters/pipeline_worker/3/retry", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


async def test_an_admin_key_is_also_an_api_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/artifacts", headers=bearer(ADMIN))
    assert response.status_code == 200


async def test_retrying_marks_the_dead_letter_for_its_worker(
    client: httpx.AsyncClient, store: DeadLetterStore
) -> None:
    response = await client.post("/dead-letters/pipeline_worker/7/retry", headers=bearer(ADMIN))
    assert response.status_code == 202
    assert response.json()["status"] == "retry"
    assert [d.position for d in store.due_for_retry()] == [7]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/dead-letters/pipeline_worker/5/retry", "dead_letter_not_found"),
        ("/dead-letters/nobody/3/retry", "unknown_consumer"),
    ],
)
async def test_retrying_what_is_not_there_is_404(
    client: httpx.AsyncClient, path: str, error: str
) -> None:
    response = await client.post(path, headers=bearer(ADMIN))
    assert response.status_code == 404
    assert response.json()["error"] == error


@pytest.mark.parametrize("position", ["0", "-1", str(2**63), "x"])
async def test_a_position_that_cannot_be_one_is_422(
    client: httpx.AsyncClient, position: str
) -> None:
    response = await client.post(
        f"/dead-letters/pipeline_worker/{position}/retry", headers=bearer(ADMIN)
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_the_list_filters_by_consumer(client: httpx.AsyncClient) -> None:
    response = await client.get("/dead-letters?consumer=nobody", headers=bearer(ADMIN))
    assert response.status_code == 404
    response = await client.get("/dead-letters?consumer=pipeline_worker", headers=bearer(ADMIN))
    assert len(response.json()["items"]) == 2


async def test_without_any_keys_the_admin_routes_are_open_like_the_rest(
    tmp_path: Path, store: DeadLetterStore
) -> None:
    async for client in _client(tmp_path, store):
        response = await client.get("/dead-letters")
        assert response.status_code == 200


def test_admin_keys_are_read_comma_separated() -> None:
    settings = Settings(admin_api_keys=SecretStr(" a-key , ,another "))
    assert settings.admin_api_key_list == ["a-key", "another"]
