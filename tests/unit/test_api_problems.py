"""Every error the API answers is an RFC 9457 problem, with the error code clients read."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from infrastructure.blobstore import LocalBlobStore
from tests.fakes import in_memory_artifacts
from tests.unit.test_api import MULTIPART, app_with, form, http_client, part, upload

PROBLEM = "application/problem+json"
KEY = "problem-test-key-0123456789"


def assert_problem(response: httpx.Response, status: int, error: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert set(body) == {"type", "title", "status", "detail", "error"}
    assert body["status"] == status
    assert body["error"] == error
    assert body["title"]
    assert body["detail"]
    return body


async def test_an_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/no-such-route"), 404, "not_found")

    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"


async def test_an_unknown_artifact_is_a_404_problem_of_its_own_type(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.get(f"/artifacts/{uuid.uuid4()}"), 404, "artifact_not_found")

    assert body["type"] == "/problems/artifact_not_found"


async def test_a_wrong_method_is_a_405_problem_that_still_lists_every_allowed_method(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/artifacts")

    body = assert_problem(response, 405, "method_not_allowed")
    assert body["type"] == "about:blank"
    assert response.headers["Allow"] == "GET, POST"


async def test_a_request_that_fails_validation_is_a_422_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/artifacts?limit=0"), 422, "invalid_request")

    assert str(body["detail"]).startswith("query.limit: ")


async def test_an_upload_over_the_limit_is_a_413_problem_while_it_streams(
    client: httpx.AsyncClient,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield part("file", b"", filename="big")[:-2]
        for _ in range(64):  # 64 KiB, far over the app's limit
            yield b"x" * 1024

    response = await client.post("/artifacts", content=body(), headers={"Content-Type": MULTIPART})

    assert_problem(response, 413, "upload_too_large")


async def test_a_body_that_is_not_multipart_is_a_415_problem(client: httpx.AsyncClient) -> None:
    assert_problem(
        await client.post("/artifacts", json={"file": "x"}), 415, "unsupported_media_type"
    )


async def test_a_bad_form_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/artifacts", content=form(part("other", b"x")), headers={"Content-Type": MULTIPART}
    )

    assert_problem(response, 400, "bad_upload")


async def test_reprocessing_too_early_is_a_409_problem(client: httpx.AsyncClient) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]

    response = await client.post(f"/artifacts/{artifact_id}/reprocess")

    assert_problem(response, 409, "reprocessing_not_allowed")


async def test_no_text_yet_is_a_404_problem(client: httpx.AsyncClient) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]

    assert_problem(await client.get(f"/artifacts/{artifact_id}/text"), 404, "no_text")


async def test_the_list_without_a_read_model_is_a_503_problem(client: httpx.AsyncClient) -> None:
    # The ``client`` fixture of this module builds the app without a catalog.
    assert_problem(await client.get("/artifacts"), 503, "read_model_unavailable")


async def test_a_missing_api_key_is_a_401_problem_with_a_bearer_challenge(
    tmp_path: Path,
) -> None:
    artifacts = in_memory_artifacts()
    app = app_with(artifacts, LocalBlobStore(tmp_path / "blobs"), api_keys=(KEY,))
    try:
        async with http_client(app) as client:
            response = await client.get(f"/artifacts/{uuid.uuid4()}")
    finally:
        artifacts.close()

    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_the_openapi_document_gives_every_error_as_a_problem(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()

    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "error"}
    errors = {
        (method.upper(), path, status): response["content"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }
    # A degraded /ready is not an error but its report, check by check.
    readiness = errors.pop(("GET", "/ready", "503"))
    assert readiness == {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
    assert ("GET", "/artifacts/{artifact_id}", "404") in errors
    for content in errors.values():
        assert content == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API without API keys and without a read model."""
    artifacts = in_memory_artifacts()
    try:
        async with http_client(app_with(artifacts, LocalBlobStore(tmp_path / "blobs"))) as client:
            yield client
    finally:
        artifacts.close()
