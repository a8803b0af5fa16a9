"""Downloads: an artifact's original bytes, its extracted text and its Markdown, as
attachments."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from application.processing import ContentWarning
from domain.artifact import Artifact, ArtifactStatus
from infrastructure.api.dependencies import Artifacts, Blobs, CallerDep, authenticated
from infrastructure.api.problems import NoExtractedText, documented
from infrastructure.api.results import open_blobs, pieces, unavailable
from infrastructure.api.security import owned_artifact

router = APIRouter(dependencies=[authenticated], responses=documented(401))

_ERRORS = documented(401, 404, 410, 422)
MARKDOWN = "text/markdown; charset=utf-8"


@router.get(
    "/artifacts/{artifact_id}/content",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
    summary="The original bytes, as an attachment",
)
def get_content(
    artifact_id: UUID, artifacts: Artifacts, blob_store: Blobs, caller: CallerDep
) -> StreamingResponse:
    artifact = owned_artifact(artifacts, artifact_id, caller)
    blobs = open_blobs(
        blob_store, [artifact.storage_location], f"the content of artifact {artifact_id} is gone"
    )
    return _attachment(pieces(*blobs), artifact.filename, "application/octet-stream")


@router.get(
    "/artifacts/{artifact_id}/text",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"text/plain; charset=utf-8": {}}}, **_ERRORS},
    summary="The extracted text (UTF-8; the pages of a paged document end with a form feed), "
    "as an attachment",
)
def get_text(
    artifact_id: UUID, artifacts: Artifacts, blob_store: Blobs, caller: CallerDep
) -> StreamingResponse:
    artifact = owned_artifact(artifacts, artifact_id, caller)
    if not artifact.text_locations:
        raise NoExtractedText(_why_no_text(artifact))
    blobs = open_blobs(
        blob_store, artifact.text_locations, f"the text of artifact {artifact_id} is gone"
    )
    return _attachment(
        pieces(*blobs), _renamed(artifact.filename, ".txt"), "text/plain; charset=utf-8"
    )


@router.get(
    "/artifacts/{artifact_id}/markdown",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {MARKDOWN: {}}}, **_ERRORS},
    summary="The document as Markdown (headings, lists, tables; page markers in paged "
    "documents), as an attachment",
)
def get_markdown(
    artifact_id: UUID, artifacts: Artifacts, blob_store: Blobs, caller: CallerDep
) -> StreamingResponse:
    artifact = owned_artifact(artifacts, artifact_id, caller)
    if artifact.markdown_location is None:
        raise unavailable(artifact, "Markdown")
    blobs = open_blobs(
        blob_store, [artifact.markdown_location], f"the Markdown of artifact {artifact_id} is gone"
    )
    return _attachment(pieces(*blobs), _renamed(artifact.filename, ".md"), MARKDOWN)


def _why_no_text(artifact: Artifact) -> str:
    if artifact.status is not ArtifactStatus.PROCESSED:
        return str(unavailable(artifact, "extracted text"))
    no_text = ContentWarning.NO_TEXT in artifact.warnings
    why = f" (warning {ContentWarning.NO_TEXT}: nothing legible was found in it)" if no_text else ""
    return f"artifact {artifact.id} was processed and has no extracted text{why}"


def _renamed(filename: str, suffix: str) -> str:
    return filename.rsplit(".", 1)[0] + suffix


def _attachment(body: Iterator[bytes], filename: str, media_type: str) -> StreamingResponse:
    # Served as a download, never rendered: the bytes are someone else's upload, and what
    # was extracted from it is too.
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
    )
