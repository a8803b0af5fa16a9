"""Tenants and deletion through the real app over HTTP: each client sees only its own, and
an artifact deleted for good answers 410 to its owner and 404 to everyone else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from application.artifacts import ArtifactsApplication
from application.erasure import Eraser
from infrastructure.api.app import ApiOptions, ApiServices, create_app
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from tests.fakes import FakeCatalog, InMemoryKeyStore, in_memory_artifacts
from tests.unit.test_api import MULTIPART, form, http_client, part

ALPHA, BETA, ADMIN = "alpha-key-0123456789", "beta-key-0123456789", "admin-key-0123456789"


@dataclass
class Api:
    app: FastAPI
    artifacts: ArtifactsApplication
    blob_root: Path
    catalog: FakeCatalog
    keys: InMemoryKeyStore

    def blob_files(self) -> list[Path]:
        return [path for path in self.blob_root.rglob("*") if path.is_file()]


@pytest.fixture
def api(tmp_path: Path) -> Api:
    keys = InMemoryKeyStore()
    artifacts = in_memory_artifacts(keys)
    blob_store = LocalBlobStore(tmp_path / "blobs")
    catalog = FakeCatalog()
    app = create_app(
        ApiServices(
            artifacts=artifacts,
            blob_store=blob_store,
            catalog=catalog,
            eraser=Eraser(artifacts, blob_store, keys),
            options=ApiOptions(
                max_upload_bytes=4096,
                api_keys=(f"alpha:{ALPHA}", f"beta:{BETA}"),
                admin_keys=(f"ops:{ADMIN}",),
                dedupe_by_sha256=True,
            ),
        )
    )
    return Api(app, artifacts, tmp_path / "blobs", catalog, keys)


@pytest.fixture
async def client(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    try:
        async with http_client(api.app) as client:
            yield client
    finally:
        api.artifacts.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def upload(
    client: httpx.AsyncClient, key: str, content: bytes = b"hello", idempotency_key: str = ""
) -> str:
    headers = {"Content-Type": MULTIPART, **bearer(key)}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    response = await client.post(
        "/artifacts",
        content=form(part("file", content, filename="secret-name.txt")),
        headers=headers,
    )
    assert response.status_code in (200, 202), response.text
    artifact_id: str = response.json()["id"]
    return artifact_id


def settled(api: Api, artifact_id: str) -> None:
    """Gives the upload's run an outcome: with none, a run may be in flight."""
    api.artifacts.record_processing_failure(
        uuid.UUID(artifact_id), run=0, reason="unsupported_type", message="not processed"
    )


ROUTES = [
    ("GET", ""),
    ("GET", "/content"),
    ("GET", "/text"),
    ("GET", "/markdown"),
    ("GET", "/chunks"),
    ("GET", "/pages"),
    ("POST", "/reprocess"),
    ("POST", "/cancel"),
    ("DELETE", ""),
]


async def answer(
    client: httpx.AsyncClient, method: str, artifact_id: str, suffix: str, key: str
) -> tuple[int, dict[str, str]]:
    response = await client.request(
        method, f"/artifacts/{artifact_id}{suffix}", headers=bearer(key)
    )
    body = response.json()
    # The id is the only difference allowed: each answer names the id it was asked about.
    body["detail"] = body["detail"].replace(artifact_id, "<id>")
    return response.status_code, body


@pytest.mark.parametrize(("method", "suffix"), ROUTES)
async def test_another_tenants_artifact_is_answered_exactly_as_an_unknown_id(
    client: httpx.AsyncClient, method: str, suffix: str
) -> None:
    of_beta = await upload(client, BETA)

    seen_by_alpha = await answer(client, method, of_beta, suffix, ALPHA)
    unknown = await answer(client, method, str(uuid.uuid4()), suffix, ALPHA)

    assert seen_by_alpha == unknown
    assert seen_by_alpha[0] == 404
    assert seen_by_alpha[1]["error"] == "artifact_not_found"


async def test_the_owner_and_an_admin_reach_the_artifact(client: httpx.AsyncClient) -> None:
    of_alpha = await upload(client, ALPHA)

    by_owner = await client.get(f"/artifacts/{of_alpha}", headers=bearer(ALPHA))
    by_admin = await client.get(f"/artifacts/{of_alpha}/content", headers=bearer(ADMIN))

    assert by_owner.status_code == 200
    assert by_owner.json()["tenant"] == "alpha"
    assert by_owner.json()["links"]["delete"] == f"/artifacts/{of_alpha}"
    assert by_admin.status_code == 200
    assert by_admin.content == b"hello"


@pytest.mark.parametrize(
    ("key", "query", "scope"),
    [
        (ALPHA, "", "alpha"),
        (ALPHA, "?tenant=beta", "alpha"),
        (ADMIN, "", None),
        (ADMIN, "?tenant=beta", "beta"),
    ],
    ids=["own", "other-tenant-ignored", "admin-all", "admin-one"],
)
async def test_the_list_shows_the_callers_tenant_and_an_admin_any(
    client: httpx.AsyncClient, api: Api, key: str, query: str, scope: str | None
) -> None:
    response = await client.get(f"/artifacts{query}", headers=bearer(key))

    assert response.status_code == 200
    assert [listed["tenant"] for listed in api.catalog.listed] == [scope]


async def test_an_idempotency_key_is_shared_within_a_tenant_only(
    api: Api, client: httpx.AsyncClient
) -> None:
    first = await upload(client, ALPHA, idempotency_key="order-1")
    again = await upload(client, ALPHA, idempotency_key="order-1")
    of_beta = await upload(client, BETA, idempotency_key="order-1")
    beta_again = await upload(client, BETA, idempotency_key="order-1")

    assert first == again
    assert of_beta == beta_again != first
    assert api.artifacts.get_artifact(uuid.UUID(of_beta)).tenant == "beta"


async def test_the_same_bytes_are_deduplicated_within_a_tenant_only(
    client: httpx.AsyncClient,
) -> None:
    first = await upload(client, ALPHA, b"same bytes")
    again = await upload(client, ALPHA, b"same bytes")
    of_beta = await upload(client, BETA, b"same bytes")

    assert first == again != of_beta


async def test_delete_erases_the_artifact_and_its_bytes_then_answers_410_to_the_owner(
    api: Api, client: httpx.AsyncClient
) -> None:
    artifact_id = await upload(client, ALPHA)
    settled(api, artifact_id)

    deleted = await client.delete(f"/artifacts/{artifact_id}", headers=bearer(ALPHA))

    assert deleted.status_code == 204
    assert api.blob_files() == []
    assert api.keys.key_for(uuid.UUID(artifact_id)) is None
    assert api.artifacts.get_artifact(uuid.UUID(artifact_id)).filename != "secret-name.txt"
    for method, suffix in ROUTES[:-1]:
        status, body = await answer(client, method, artifact_id, suffix, ALPHA)
        assert (status, body["error"]) == (410, "artifact_erased"), (method, suffix)
        status, body = await answer(client, method, artifact_id, suffix, BETA)
        assert (status, body["error"]) == (404, "artifact_not_found"), (method, suffix)


async def test_a_second_delete_is_a_no_op(client: httpx.AsyncClient, api: Api) -> None:
    artifact_id = await upload(client, ALPHA)
    settled(api, artifact_id)
    await client.delete(f"/artifacts/{artifact_id}", headers=bearer(ALPHA))
    events = len(api.artifacts.history(uuid.UUID(artifact_id)))

    again = await client.delete(f"/artifacts/{artifact_id}", headers=bearer(ALPHA))

    assert again.status_code == 204
    assert len(api.artifacts.history(uuid.UUID(artifact_id))) == events


async def test_delete_of_a_run_in_flight_is_202_erasing_until_the_run_stops(
    client: httpx.AsyncClient, api: Api
) -> None:
    artifact_id = await upload(client, ALPHA)

    deleted = await client.delete(f"/artifacts/{artifact_id}", headers=bearer(ALPHA))

    assert deleted.status_code == 202
    assert deleted.json() == {
        "id": artifact_id,
        "status": "erasing",
        "links": {"self": f"/artifacts/{artifact_id}"},
    }
    assert api.artifacts.get_artifact(uuid.UUID(artifact_id)).erasure_pending
    # Until the run stops, the erasure is pending; a second delete says so again.
    again = await client.delete(f"/artifacts/{artifact_id}", headers=bearer(ALPHA))
    assert again.status_code == 202
    # And nothing of it is served any more: it is going, whatever its run still does.
    for path in ("", "/content"):
        gone = await client.get(f"/artifacts/{artifact_id}{path}", headers=bearer(ALPHA))
        assert (gone.status_code, gone.json()["error"]) == (410, "artifact_erasing")
        assert "being erased" in gone.json()["detail"]


async def test_an_admin_deleting_another_tenants_artifact_is_recorded_as_the_admin(
    client: httpx.AsyncClient, api: Api
) -> None:
    artifact_id = await upload(client, BETA)
    settled(api, artifact_id)

    deleted = await client.delete(f"/artifacts/{artifact_id}", headers=bearer(ADMIN))

    assert deleted.status_code == 204
    erasure = api.artifacts.get_artifact(uuid.UUID(artifact_id)).erasure
    assert erasure is not None
    assert erasure["by"].startswith("admin:key-")


async def test_the_same_bytes_after_their_artifact_was_erased_make_a_new_artifact(
    client: httpx.AsyncClient, api: Api
) -> None:
    first = await upload(client, ALPHA, b"same bytes")
    settled(api, first)
    await client.delete(f"/artifacts/{first}", headers=bearer(ALPHA))

    again = await upload(client, ALPHA, b"same bytes")

    assert again != first
    assert (await client.get(f"/artifacts/{again}", headers=bearer(ALPHA))).status_code == 200


async def test_the_openapi_document_declares_delete_and_the_410(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert {"202", "204", "404"} <= set(paths["/artifacts/{artifact_id}"]["delete"]["responses"])
    assert "410" in paths["/artifacts/{artifact_id}"]["get"]["responses"]
    assert "410" in paths["/artifacts/{artifact_id}/content"]["get"]["responses"]


@pytest.mark.parametrize(
    "api_keys",
    ["Alpha:key", "al pha:key", "-alpha:key", "alpha:", "alpha:k1,beta:k1"],
    ids=["upper-case", "space", "leading-dash", "no-key", "one-key-two-tenants"],
)
def test_bad_api_keys_are_refused_at_start(api_keys: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(api_keys=api_keys)  # type: ignore[arg-type]

    assert "API_KEYS" in str(refused.value) or "tenant" in str(refused.value)
    assert "k1" not in str(refused.value).replace("'k1'", "")


def test_api_keys_name_their_tenants_and_a_bare_key_is_the_default_tenants() -> None:
    settings = Settings(
        api_keys="alpha:k1, bare-key ,beta:k2",  # type: ignore[arg-type]
        admin_api_keys="ops:a1",  # type: ignore[arg-type]
    )

    assert [(k.tenant, k.key) for k in settings.api_tenant_keys] == [
        ("alpha", "k1"),
        ("default", "bare-key"),
        ("beta", "k2"),
    ]
    assert settings.api_key_list == ["k1", "bare-key", "k2"]
    assert [(k.tenant, k.key) for k in settings.admin_tenant_keys] == [("ops", "a1")]
