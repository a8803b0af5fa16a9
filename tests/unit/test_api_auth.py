"""API keys, through the real app over HTTP; and the rule for starting without any."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from infrastructure.api.security import AnonymousAccessRefused, check_anonymous_access
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from tests.fakes import FakeCatalog, in_memory_artifacts
from tests.unit.test_api import MULTIPART, app_with, form, http_client, part

KEYS = ["first-key-0123456789", "second-key-abcdefghij"]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    artifacts = in_memory_artifacts()
    app = app_with(
        artifacts,
        LocalBlobStore(tmp_path / "blobs"),
        max_upload_bytes=4096,
        catalog=FakeCatalog(),
        api_keys=tuple(KEYS),
    )
    try:
        async with http_client(app) as client:
            yield client
    finally:
        artifacts.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post_file(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/artifacts",
        content=form(part("file", b"hello", filename="a.txt")),
        headers={"Content-Type": MULTIPART, **headers},
    )


@pytest.mark.parametrize("key", KEYS)
async def test_each_configured_key_is_admitted(client: httpx.AsyncClient, key: str) -> None:
    created = await post_file(client, bearer(key))
    shown = await client.get(f"/artifacts/{created.json()['id']}", headers=bearer(key))

    assert created.status_code == 202
    assert shown.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("not-a-key"),
        bearer(KEYS[0][:-1]),
        bearer(KEYS[0] + "x"),
        {"Authorization": KEYS[0]},
        {"Authorization": f"Basic {KEYS[0]}"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "wrong", "prefix", "longer", "no-scheme", "basic", "empty"],
)
async def test_a_missing_or_wrong_key_is_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    artifact = f"/artifacts/{uuid.uuid4()}"
    responses = [
        await post_file(client, headers),
        await client.get("/artifacts", headers=headers),
        await client.get(artifact, headers=headers),
        await client.get(f"{artifact}/content", headers=headers),
        await client.get(f"{artifact}/text", headers=headers),
        await client.post(f"{artifact}/reprocess", headers=headers),
    ]

    for response in responses:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        body = response.json()
        assert body["error"] == "unauthorized"
        assert body["detail"]


async def test_an_upload_without_a_key_stores_nothing(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await post_file(client, {})

    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


async def test_health_needs_no_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/ready", "/metrics"])
async def test_readiness_and_metrics_need_a_key(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 401
    answered = await client.get(path, headers={"Authorization": f"Bearer {KEYS[0]}"})
    # /ready: 503 without Temporal in this test; what matters is that the key let it answer.
    assert answered.status_code in (200, 503)


async def test_without_keys_the_api_serves_anonymously(tmp_path: Path) -> None:
    artifacts = in_memory_artifacts()
    app = app_with(artifacts, LocalBlobStore(tmp_path / "blobs"), max_upload_bytes=64)
    try:
        async with http_client(app) as client:
            response = await post_file(client, {})
    finally:
        artifacts.close()

    assert response.status_code == 202


# --- The start-up rule ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_without_keys_a_loopback_api_starts_and_warns_that_it_is_anonymous(host: str) -> None:
    with capture_logs() as logs:
        check_anonymous_access(host=host, api_keys=[], allow_anonymous=False)

    assert [(e["event"], e["log_level"]) for e in logs] == [("api_anonymous_access", "warning")]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.example.com"])
def test_without_keys_a_reachable_api_refuses_to_start(host: str) -> None:
    with pytest.raises(AnonymousAccessRefused) as refused:
        check_anonymous_access(host=host, api_keys=[], allow_anonymous=False)

    assert "API_KEYS" in str(refused.value)
    assert "ALLOW_ANONYMOUS" in str(refused.value)


def test_allow_anonymous_lets_a_reachable_api_start_and_still_warns() -> None:
    with capture_logs() as logs:
        check_anonymous_access(host="0.0.0.0", api_keys=[], allow_anonymous=True)

    assert [e["event"] for e in logs] == ["api_anonymous_access"]


def test_with_keys_any_address_starts_without_a_warning() -> None:
    with capture_logs() as logs:
        check_anonymous_access(host="0.0.0.0", api_keys=KEYS, allow_anonymous=False)

    assert logs == []


def test_api_keys_are_read_comma_separated_and_kept_secret() -> None:
    settings = Settings(api_keys=" first-key , ,second-key ")  # type: ignore[arg-type]

    assert settings.api_key_list == ["first-key", "second-key"]
    assert "first-key" not in repr(settings)
