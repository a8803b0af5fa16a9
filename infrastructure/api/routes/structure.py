"""The document's structure as JSON: its chunks, ready for retrieval, and its page facts.

Both are JSON arrays the workflow stored as blobs; they are streamed as stored, or a window
of them (``offset``, ``limit``) read item by item, so neither is ever held whole here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from domain.artifact import ArtifactStatus
from infrastructure.api.dependencies import Artifacts, Blobs, CallerDep, authenticated
from infrastructure.api.problems import documented
from infrastructure.api.results import ResultUnavailable, json_items, open_blobs, unavailable
from infrastructure.api.schemas import ChunkList, PageList
from infrastructure.api.security import owned_artifact

router = APIRouter(dependencies=[authenticated], responses=documented(401))

_ERRORS = documented(401, 404, 410, 422)
_JSON = "application/json"
# A page of items: larger windows are just the whole array, which needs no window.
MAX_LIMIT = 10_000
Offset = Annotated[int, Query(ge=0, description="items to skip")]
Limit = Annotated[
    int | None,
    Query(ge=1, le=MAX_LIMIT, description="items to return at most (default: all after offset)"),
]


@router.get(
    "/artifacts/{artifact_id}/chunks",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"model": ChunkList, "content": {_JSON: {}}}, **_ERRORS},
    summary="Heading-aware chunks of the text with their page references, in document "
    "order; a window of them with offset and limit (a page shorter than limit is the last)",
)
def get_chunks(
    artifact_id: UUID,
    artifacts: Artifacts,
    blob_store: Blobs,
    caller: CallerDep,
    offset: Offset = 0,
    limit: Limit = None,
) -> StreamingResponse:
    artifact = owned_artifact(artifacts, artifact_id, caller)
    if artifact.chunks_location is None:
        raise unavailable(artifact, "chunks")
    (blob,) = open_blobs(
        blob_store, [artifact.chunks_location], f"the chunks of artifact {artifact_id} are gone"
    )
    return _json(json_items(blob, offset=offset, limit=limit))


@router.get(
    "/artifacts/{artifact_id}/pages",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"model": PageList, "content": {_JSON: {}}}, **_ERRORS},
    summary="Per page: where its text came from (text layer, OCR or none), OCR's "
    "confidence and its characters; a window of pages with offset and limit",
)
def get_pages(
    artifact_id: UUID,
    artifacts: Artifacts,
    blob_store: Blobs,
    caller: CallerDep,
    offset: Offset = 0,
    limit: Limit = None,
) -> StreamingResponse:
    artifact = owned_artifact(artifacts, artifact_id, caller)
    if artifact.pages_location is None:
        if artifact.status is ArtifactStatus.PROCESSED and artifact.page_count is None:
            raise ResultUnavailable(
                f"artifact {artifact_id} is not a paged document ({artifact.kind}), "
                "so it has no page facts"
            )
        raise unavailable(artifact, "page facts")
    (blob,) = open_blobs(
        blob_store, [artifact.pages_location], f"the page facts of artifact {artifact_id} are gone"
    )
    return _json(json_items(blob, offset=offset, limit=limit))


def _json(body: Iterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type=_JSON, headers={"X-Content-Type-Options": "nosniff"})
