"""Downloads: an artifact's original bytes and its extracted text, as attachments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from application.artifacts import ArtifactNotFound
from application.ports import BlobNotFound
from infrastructure.api.dependencies import Artifacts, Blobs, authenticated
from infrastructure.api.problems import NoExtractedText, documented

router = APIRouter(dependencies=[authenticated], responses=documented(401))

_ERRORS = documented(401, 404, 422)
_CHUNK = 256 * 1024


@router.get(
    "/artifacts/{artifact_id}/content",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
    summary="The original bytes, as an attachment",
)
def get_content(artifact_id: UUID, artifacts: Artifacts, blob_store: Blobs) -> StreamingResponse:
    artifact = artifacts.get_artifact(artifact_id)
    try:
        blob = blob_store.open(artifact.storage_location)
    except BlobNotFound:
        raise ArtifactNotFound(f"the content of artifact {artifact_id} is gone") from None
    return _attachment(_chunks(blob), artifact.filename, "application/octet-stream")


@router.get(
    "/artifacts/{artifact_id}/text",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"text/plain; charset=utf-8": {}}}, **_ERRORS},
    summary="The extracted text (UTF-8; PDF pages end with a form feed), as an attachment",
)
def get_text(artifact_id: UUID, artifacts: Artifacts, blob_store: Blobs) -> StreamingResponse:
    artifact = artifacts.get_artifact(artifact_id)
    if not artifact.text_locations:
        raise NoExtractedText(f"artifact {artifact_id} has no extracted text")

    # Opened before the response starts, so a missing blob is a 404, not a cut-off body.
    blobs = []
    try:
        for location in artifact.text_locations:
            blobs.append(blob_store.open(location))
    except BlobNotFound:
        for blob in blobs:
            blob.close()
        raise ArtifactNotFound(f"the text of artifact {artifact_id} is gone") from None

    def text() -> Iterator[bytes]:
        for blob in blobs:
            yield from _chunks(blob)

    name = artifact.filename.rsplit(".", 1)[0] + ".txt"
    return _attachment(text(), name, "text/plain; charset=utf-8")


def _chunks(blob: Any) -> Iterator[bytes]:
    with blob:
        while chunk := blob.read(_CHUNK):
            yield chunk


def _attachment(body: Iterator[bytes], filename: str, media_type: str) -> StreamingResponse:
    # Served as a download, never rendered: the bytes are someone else's upload.
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
    )
