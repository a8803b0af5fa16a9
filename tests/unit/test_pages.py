"""The web page's routes through the real app: shells, assets and their security headers.

What the page does in a browser is tested end to end in ``tests/e2e/test_web_page.py``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from infrastructure.blobstore import LocalBlobStore
from tests.fakes import in_memory_artifacts
from tests.unit.test_api import app_with


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    artifacts = in_memory_artifacts()
    app = app_with(artifacts, LocalBlobStore(tmp_path), max_upload_bytes=1024)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client
    artifacts.close()


def assert_locked_down(response: httpx.Response) -> None:
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_root_is_the_artifacts_page_with_an_upload_form_and_the_list(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert_locked_down(response)
    assert 'id="file-input" type="file"' in response.text
    assert 'id="artifact-list"' in response.text
    assert 'id="api-key"' in response.text
    assert '<script src="/ui/static/app.js" defer></script>' in response.text


async def test_an_artifact_has_a_page_of_its_own(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/ui/artifacts/{uuid.uuid4()}")

    assert response.status_code == 200
    assert_locked_down(response)
    assert 'data-page="artifact"' in response.text
    assert 'id="temporal-link"' in response.text


async def test_a_malformed_artifact_page_link_is_rejected(client: httpx.AsyncClient) -> None:
    response = await client.get("/ui/artifacts/not-an-id")

    assert response.status_code == 422


async def test_the_pages_have_no_inline_script_for_the_policy_to_block(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/", f"/ui/artifacts/{uuid.uuid4()}"):
        html = (await client.get(path)).text
        assert html.count("<script") == 1, path
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no inline event handlers


@pytest.mark.parametrize(
    ("name", "media_type"), [("app.js", "text/javascript"), ("style.css", "text/css")]
)
async def test_the_assets_are_served_with_their_types(
    client: httpx.AsyncClient, name: str, media_type: str
) -> None:
    response = await client.get(f"/ui/static/{name}")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(media_type)
    assert_locked_down(response)


@pytest.mark.parametrize("name", ["pages.py", "..%2Fpages.py", "%2E%2E%2Fapp.py", "nope.js"])
async def test_only_the_listed_assets_are_served(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/ui/static/{name}")

    assert response.status_code == 404


async def test_the_script_never_writes_markup(client: httpx.AsyncClient) -> None:
    script = (await client.get("/ui/static/app.js")).text

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


async def test_the_pages_are_not_in_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/ui/")]
