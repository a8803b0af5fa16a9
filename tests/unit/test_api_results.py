"""The structured results through the real app: Markdown, chunks, page facts, language and
warnings, and a 404 problem saying why for every artifact that has none.

The results are blobs in a real ``LocalBlobStore``, recorded on the artifact the way the
workflow records them (``record_processing_result`` with their locations).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.ports import ContentFacts, SummaryCandidate
from infrastructure.api.results import PIECE, json_items
from infrastructure.api.routes.structure import MAX_LIMIT
from infrastructure.processing.text import store_text
from tests.unit.test_api import (
    SUMMARY,
    Service,
    attachment_names,
    build,
    http_client,
    record_failure,
    upload,
)

MARKDOWN = (
    "# Quarterly report\n\n<!-- page 1 -->\n\n## Sales | growth\n\n"
    "- north: up\n- south: flat\n\n| region | total |\n| --- | --- |\n| north | 12 |\n"
    "\n<!-- page 2 -->\n\nCafé au lait, naïve résumé.\n"
)
CHUNKS = [
    {
        "index": index,
        "text": f'Chunk {index}: Café, «quoted», a "string" with [brackets], {{braces}}.',
        "headings": ["Quarterly report", "Sales | growth"],
        "pages": [index // 2 + 1, index // 2 + 1],
        "chars": 60,
    }
    for index in range(7)
]
PAGES = [
    {"number": 1, "source": "text", "confidence": None, "chars": 812},
    {"number": 2, "source": "ocr", "confidence": 91.5, "chars": 640},
    {"number": 3, "source": "none", "confidence": None, "chars": 0},
]
PATHS = ["markdown", "chunks", "pages"]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = build(tmp_path)
    yield service
    service.artifacts.close()


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(service.app) as client:
        yield client


def put(service: Service, content: str) -> str:
    return store_text(service.blob_store, content).location


def created(service: Service, content: bytes, filename: str) -> str:
    """A new artifact straight through the application, as an upload makes one."""
    blob = service.blob_store.writer()
    blob.write(content)
    stored = blob.commit()
    return str(
        service.artifacts.create_artifact_once(
            idempotency_key=None,
            filename=filename,
            content_type="application/octet-stream",
            size=stored.size,
            sha256=stored.sha256,
            storage_location=stored.location,
        ).id
    )


def record_structured_result(
    service: Service,
    artifact_id: str,
    *,
    markdown: str | None = MARKDOWN,
    chunks: list[dict[str, Any]] | None = None,
    pages: list[dict[str, Any]] | None = None,
    page_count: int | None = 3,
    warnings: tuple[str, ...] = (),
    language: str | None = "en",
    text: str = "Quarterly report\fCafé au lait\f",
    summary: SummaryCandidate | None = SUMMARY,
) -> None:
    """Stores the results as blobs and records them as run 0's result, as the workflow does."""
    uid = uuid.UUID(artifact_id)
    result = ContentFacts(
        mime_type="application/pdf",
        kind="pdf",
        page_count=page_count,
        char_count=len(text),
        text_locations=[put(service, text)] if text else [],
        markdown_location=put(service, markdown) if markdown is not None else None,
        chunks_location=put(service, json.dumps(chunks, ensure_ascii=False))
        if chunks is not None
        else None,
        pages_location=put(service, json.dumps(pages)) if pages is not None else None,
        language=language,
        warnings=list(warnings),
    )
    service.artifacts.record_processing_started(uid, run=0, workflow_id=f"artifact-{uid}")
    service.artifacts.record_processing_result(uid, run=0, facts=result, summary=summary)


async def processed(
    client: httpx.AsyncClient, service: Service, filename: str = "report.pdf", **results: Any
) -> str:
    artifact_id: str = (await upload(client, b"%PDF-1.7", filename=filename)).json()["id"]
    record_structured_result(service, artifact_id, **{"chunks": CHUNKS, "pages": PAGES, **results})
    return artifact_id


# --- The artifact shows its language, warnings and where its results are ----------------


async def test_a_processed_artifact_shows_its_language_warnings_and_result_links(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = await processed(client, service)

    view = (await client.get(f"/artifacts/{artifact_id}")).json()

    assert view["results"]["language"] == "en"
    assert view["results"]["warnings"] == []
    path = f"/artifacts/{artifact_id}"
    assert {key: view["links"][key] for key in ("text", *PATHS)} == {
        "text": f"{path}/text",
        "markdown": f"{path}/markdown",
        "chunks": f"{path}/chunks",
        "pages": f"{path}/pages",
    }


async def test_a_document_without_text_is_processed_with_the_no_text_warning(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = await processed(
        client,
        service,
        filename="scan.pdf",
        text="",
        markdown="<!-- page 1 -->\n",
        chunks=[],
        pages=[{"number": 1, "source": "none", "confidence": None, "chars": 0}],
        page_count=1,
        language=None,
        warnings=("no_text",),
        summary=None,
    )

    view = (await client.get(f"/artifacts/{artifact_id}")).json()
    text = await client.get(f"/artifacts/{artifact_id}/text")

    assert (view["status"], view["summary"]) == ("processed", None)
    assert (view["results"]["warnings"], view["results"]["language"]) == (["no_text"], None)
    assert view["links"]["text"] is None
    assert (await client.get(view["links"]["chunks"])).json() == []
    assert text.status_code == 404
    assert text.json()["error"] == "no_text"
    assert "processed" in text.json()["detail"]
    assert "no_text" in text.json()["detail"]


async def test_links_to_results_are_null_until_the_run_has_written_them(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]

    links = (await client.get(f"/artifacts/{artifact_id}")).json()["links"]

    assert [links[key] for key in PATHS] == [None, None, None]


async def test_reprocessing_clears_the_results_and_their_links(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = await processed(client, service)

    assert (await client.post(f"/artifacts/{artifact_id}/reprocess")).status_code == 202

    view = (await client.get(f"/artifacts/{artifact_id}")).json()
    assert view["results"] is None
    assert [view["links"][key] for key in PATHS] == [None, None, None]
    for path in PATHS:
        assert (await client.get(f"/artifacts/{artifact_id}/{path}")).status_code == 404


# --- Markdown ----------------------------------------------------------------------------


async def test_the_markdown_is_the_stored_markdown_as_a_utf8_attachment(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = await processed(client, service, filename="Quarterly report.pdf")

    response = await client.get(f"/artifacts/{artifact_id}/markdown")

    assert response.status_code == 200
    assert response.content.decode("utf-8") == MARKDOWN
    assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert attachment_names(response) == ("Quarterly report.md", "Quarterly report.md")


async def test_a_large_markdown_is_streamed_whole(
    client: httpx.AsyncClient, service: Service
) -> None:
    # Larger than one read piece, with multibyte characters across the piece boundaries.
    markdown = "".join(f"## Section {n}\n\nÉté {n} — naïve.\n\n" for n in range(40_000))
    artifact_id = await processed(client, service, markdown=markdown)

    response = await client.get(f"/artifacts/{artifact_id}/markdown")

    assert len(response.content) > 1024 * 1024
    assert response.content.decode("utf-8") == markdown


# --- Chunks and page facts ---------------------------------------------------------------


async def test_the_chunks_are_the_stored_json_array(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = await processed(client, service)

    response = await client.get(f"/artifacts/{artifact_id}/chunks")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json() == CHUNKS


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("offset=0&limit=3", CHUNKS[0:3]),
        ("offset=3&limit=3", CHUNKS[3:6]),
        ("offset=6&limit=3", CHUNKS[6:7]),
        ("offset=7&limit=3", []),
        ("offset=100", []),
        ("offset=5", CHUNKS[5:]),
        ("limit=1", CHUNKS[:1]),
        (f"limit={MAX_LIMIT}", CHUNKS),
    ],
)
async def test_a_window_of_chunks_is_chosen_with_offset_and_limit(
    client: httpx.AsyncClient, service: Service, query: str, expected: list[dict[str, Any]]
) -> None:
    artifact_id = await processed(client, service)

    response = await client.get(f"/artifacts/{artifact_id}/chunks?{query}")

    assert response.status_code == 200
    assert response.json() == expected


async def test_paging_through_the_chunks_until_a_short_page_yields_each_once(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = await processed(client, service)
    seen: list[dict[str, Any]] = []
    while True:
        page = await client.get(f"/artifacts/{artifact_id}/chunks?offset={len(seen)}&limit=2")
        seen += page.json()
        if len(page.json()) < 2:
            break

    assert seen == CHUNKS


@pytest.mark.parametrize("query", ["limit=0", f"limit={MAX_LIMIT + 1}", "offset=-1", "limit=x"])
async def test_a_window_out_of_bounds_is_422(
    client: httpx.AsyncClient, service: Service, query: str
) -> None:
    artifact_id = await processed(client, service)

    response = await client.get(f"/artifacts/{artifact_id}/chunks?{query}")

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_the_page_facts_say_where_each_pages_text_came_from(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = await processed(client, service)

    whole = await client.get(f"/artifacts/{artifact_id}/pages")
    second = await client.get(f"/artifacts/{artifact_id}/pages?offset=1&limit=1")

    assert whole.status_code == 200
    assert whole.headers["Content-Type"] == "application/json"
    assert whole.json() == PAGES
    assert second.json() == [{"number": 2, "source": "ocr", "confidence": 91.5, "chars": 640}]


# --- A 404 problem that says why ----------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_no_result_before_processing_says_the_run_is_under_way(
    client: httpx.AsyncClient, service: Service, path: str
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    uploaded = await client.get(f"/artifacts/{artifact_id}/{path}")
    service.artifacts.record_processing_started(
        uuid.UUID(artifact_id), run=0, workflow_id=f"artifact-{artifact_id}"
    )
    processing = await client.get(f"/artifacts/{artifact_id}/{path}")

    for response, status in ((uploaded, "uploaded"), (processing, "processing")):
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["error"] == "result_unavailable"
        assert problem["type"] == "/problems/result_unavailable"
        assert f"is {status} (run 0)" in problem["detail"]
        assert "when the run succeeds" in problem["detail"]


@pytest.mark.parametrize("path", PATHS)
async def test_no_result_for_a_failed_artifact_names_the_failure(
    client: httpx.AsyncClient, service: Service, path: str
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    record_failure(service, artifact_id)

    response = await client.get(f"/artifacts/{artifact_id}/{path}")

    assert response.status_code == 404
    assert response.json()["error"] == "result_unavailable"
    assert "failed (blob_missing)" in response.json()["detail"]


@pytest.mark.parametrize("path", PATHS)
async def test_no_result_for_a_cancelled_artifact_says_so(
    client: httpx.AsyncClient, service: Service, path: str
) -> None:
    artifact_id = (await upload(client, b"hello")).json()["id"]
    service.artifacts.record_processing_cancelled(
        uuid.UUID(artifact_id), run=0, reason="cancelled", message="on request"
    )

    response = await client.get(f"/artifacts/{artifact_id}/{path}")

    assert response.status_code == 404
    assert response.json()["error"] == "result_unavailable"
    assert "was cancelled" in response.json()["detail"]


@pytest.mark.parametrize("path", PATHS)
async def test_an_artifact_processed_before_structured_output_is_told_to_reprocess(
    client: httpx.AsyncClient, service: Service, path: str
) -> None:
    # As an ArtifactProcessed recorded by an earlier version reads: text, nothing more.
    artifact_id = (await upload(client, b"%PDF")).json()["id"]
    record_structured_result(service, artifact_id, markdown=None, language=None)

    response = await client.get(f"/artifacts/{artifact_id}/{path}")

    assert response.status_code == 404
    assert response.json()["error"] == "result_unavailable"
    detail = response.json()["detail"]
    assert "processed before the pipeline wrote" in detail
    assert f"POST /artifacts/{artifact_id}/reprocess" in detail


async def test_an_unpaged_document_has_no_page_facts_and_says_why(
    client: httpx.AsyncClient, service: Service
) -> None:
    artifact_id = (await upload(client, b"PK", filename="notes.docx")).json()["id"]
    record_structured_result(service, artifact_id, chunks=CHUNKS, page_count=None)

    response = await client.get(f"/artifacts/{artifact_id}/pages")

    assert response.status_code == 404
    assert response.json()["error"] == "result_unavailable"
    assert "not a paged document" in response.json()["detail"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_result_whose_blob_is_gone_is_404(
    client: httpx.AsyncClient, service: Service, path: str
) -> None:
    artifact_id = await processed(client, service)
    for blob in service.blob_files():
        (service.blob_root / blob).unlink()

    response = await client.get(f"/artifacts/{artifact_id}/{path}")

    assert response.status_code == 404
    assert response.json()["error"] == "artifact_not_found"
    assert "gone" in response.json()["detail"]


@pytest.mark.parametrize("path", PATHS)
async def test_the_results_of_an_unknown_artifact_are_404(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(f"/artifacts/{uuid.uuid4()}/{path}")

    assert response.status_code == 404
    assert response.json()["error"] == "artifact_not_found"


# --- OpenAPI ------------------------------------------------------------------------------


async def test_the_openapi_document_describes_each_result(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    def ok(path: str) -> dict[str, Any]:
        answers = paths[f"/artifacts/{{artifact_id}}/{path}"]["get"]["responses"]
        assert answers["404"]["content"]["application/problem+json"]
        content: dict[str, Any] = answers["200"]["content"]
        return content

    assert list(ok("markdown")) == ["text/markdown; charset=utf-8"]
    assert ok("chunks")["application/json"]["schema"] == {"$ref": "#/components/schemas/ChunkList"}
    assert ok("pages")["application/json"]["schema"] == {"$ref": "#/components/schemas/PageList"}
    assert set(schemas["Chunk"]["properties"]) == {"index", "text", "headings", "pages", "chars"}
    assert set(schemas["PageFacts"]["properties"]) == {"number", "source", "confidence", "chars"}
    assert {"language", "warnings"} <= set(schemas["ProcessingResults"]["properties"])
    assert {"markdown", "chunks", "pages"} <= set(schemas["ArtifactLinks"]["properties"])


# --- A window of a JSON array, read an item at a time -------------------------------------


class Trickle(io.BytesIO):
    """A blob that hands out at most ``step`` bytes per read, and counts what it gave."""

    def __init__(self, content: bytes, step: int) -> None:
        super().__init__(content)
        self.step = step
        self.given = 0

    def read(self, size: int | None = -1) -> bytes:
        piece = super().read(self.step if size is None or size < 0 else min(size, self.step))
        self.given += len(piece)
        return piece


def window(content: bytes, step: int, offset: int, limit: int | None) -> Any:
    return json.loads(b"".join(json_items(Trickle(content, step), offset=offset, limit=limit)))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    items=st.lists(JSON_VALUES, max_size=12),
    step=st.integers(1, 9),
    offset=st.integers(0, 14),
    limit=st.none() | st.integers(1, 14),
    indent=st.sampled_from([None, 2]),
)
def test_any_window_of_any_json_array_is_its_slice_whatever_the_read_sizes(
    items: list[Any], step: int, offset: int, limit: int | None, indent: int | None
) -> None:
    content = json.dumps(items, ensure_ascii=False, indent=indent).encode("utf-8")

    got = window(content, step, offset, limit)

    assert got == items[offset : None if limit is None else offset + limit]


def test_a_first_page_reads_little_more_than_the_first_page() -> None:
    content = json.dumps(CHUNKS * 1000).encode()
    blob = Trickle(content, step=len(content))

    page = b"".join(json_items(blob, offset=0, limit=2))

    assert json.loads(page) == CHUNKS[:2]
    assert blob.given < PIECE + 1 < len(content)
    assert blob.closed


@pytest.mark.parametrize("content", [b'{"a": 1}', b"[1, 2", b"[1 2]", b'[{"a": 1}', b"", b"  "])
def test_a_blob_that_is_not_a_json_array_is_an_error_not_a_short_answer(content: bytes) -> None:
    with pytest.raises(ValueError, match=r"not a (whole )?JSON array"):
        window(content, 3, 0, 10)
