"""``/artifacts``: upload a file, list artifacts, see one (with links to its results),
reprocess, cancel.

Routes stay thin: they call the application and raise its errors; ``problems.py`` answers
them. The upload and the list are ``async`` (the upload streams; the list waits for the
read model); eventsourcing is synchronous, so their calls run in the thread pool, and the
other routes are plain ``def`` routes, which FastAPI runs there too.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote
from uuid import UUID

import structlog
from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from application.artifacts import CreatedArtifact
from domain.artifact import Artifact, workflow_id_for
from infrastructure.api.dependencies import (
    ApiOptions,
    Artifacts,
    Blobs,
    Catalog,
    Metrics,
    Options,
    Principal,
    authenticated,
)
from infrastructure.api.problems import ReadModelUnavailable, documented
from infrastructure.api.quotas import Quota
from infrastructure.api.schemas import (
    ArtifactAccepted,
    ArtifactLinks,
    ArtifactList,
    ArtifactListItem,
    ArtifactView,
    CancellationAccepted,
    Links,
    ReprocessingAccepted,
)
from infrastructure.api.uploads import (
    content_key,
    idempotency_key_of,
    multipart_boundary,
    receive_upload,
)

log = structlog.get_logger(__name__)

router = APIRouter(dependencies=[authenticated], responses=documented(401))

_ERRORS = documented(400, 401, 404, 409, 413, 415, 422, 503)
_UPLOAD_ERRORS = documented(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
_UPLOAD_ERRORS[429]["headers"] = {
    "Retry-After": {
        "description": "seconds until an upload is admitted again",
        "schema": {"type": "integer"},
    }
}
Status = Literal["uploaded", "processing", "processed", "failed", "cancelled"]
_UPLOAD_BODY = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "retries with the same key get the first request's artifact",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    # An empty file is refused (400): there is nothing to process.
                    "properties": {"file": {"type": "string", "format": "binary", "minLength": 1}},
                }
            }
        },
    },
}


@router.post(
    "/artifacts",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ArtifactAccepted,
    responses={
        200: {
            "model": ArtifactAccepted,
            "description": "A retry (Idempotency-Key): the first request's artifact, "
            "with the header Idempotent-Replayed: true",
        },
        **_UPLOAD_ERRORS,
    },
    openapi_extra=_UPLOAD_BODY,
    summary="Upload a file (multipart field 'file'); processing starts on its own",
)
async def upload_artifact(
    request: Request,
    response: Response,
    artifacts: Artifacts,
    blob_store: Blobs,
    options: Options,
    metrics: Metrics,
    principal: Principal,
    quota: Quota,
) -> ArtifactAccepted:
    key = idempotency_key_of(request, principal)
    # A retry is the same request: one that is not multipart is refused like any other.
    multipart_boundary(request)
    # A retry of a completed request is answered before its body is read or stored.
    existing = await run_in_threadpool(artifacts.artifact_for_key, key) if key else None
    if existing is not None:
        created = CreatedArtifact(id=existing, replayed=True)
    else:
        await quota.check_room()
        upload = await receive_upload(request, blob_store, max_bytes=options.max_upload_bytes)
        await quota.check_fits(upload.blob, blob_store)
        if key is None and options.dedupe_by_sha256:
            key = content_key(principal, upload.blob.sha256)
        created = await run_in_threadpool(
            lambda: artifacts.create_artifact_once(
                idempotency_key=key,
                filename=upload.filename,
                content_type=upload.content_type,
                size=upload.blob.size,
                sha256=upload.blob.sha256,
                storage_location=upload.blob.location,
            )
        )
    url = str(request.url_for("get_artifact", artifact_id=created.id).path)
    response.headers["Location"] = url
    structlog.contextvars.bind_contextvars(artifact_id=str(created.id))
    if created.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
        log.info("artifact_upload_replayed")
    else:
        metrics.uploads.inc()
        metrics.upload_bytes.inc(upload.blob.size)
        log.info("artifact_created", size=upload.blob.size, content_type=upload.content_type)
    return ArtifactAccepted(id=created.id, status="uploaded", links=Links(self=url))


@router.get(
    "/artifacts",
    response_model=ArtifactList,
    responses=_ERRORS,
    summary="Artifacts, newest first, from the read model",
)
async def list_artifacts(
    request: Request,
    artifacts: Artifacts,
    catalog: Catalog,
    options: Options,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    mime_type: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ArtifactList:
    if catalog is None:
        raise ReadModelUnavailable("the read model is not configured")
    # Read-your-writes: this process's own uploads show up in the list it serves next,
    # within a short bound (the read worker follows the event store asynchronously).
    position = artifacts.last_written_position
    if position:
        await run_in_threadpool(catalog.wait_for, position, options.read_model_wait_seconds)
    page = await run_in_threadpool(
        lambda: catalog.list_artifacts(
            status=status_, mime_type=mime_type, limit=limit, cursor=cursor
        )
    )
    return ArtifactList(
        items=[
            ArtifactListItem.of(item, url=request.url_for("get_artifact", artifact_id=item.id).path)
            for item in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/artifacts/{artifact_id}",
    response_model=ArtifactView,
    responses=_ERRORS,
    summary="What happened to my file: facts, results, summary and event history",
)
def get_artifact(
    artifact_id: UUID, request: Request, artifacts: Artifacts, options: Options
) -> ArtifactView:
    structlog.contextvars.bind_contextvars(artifact_id=str(artifact_id))
    artifact = artifacts.get_artifact(artifact_id)
    return ArtifactView.of(
        artifact,
        history=artifacts.history(artifact_id),
        workflow_id=artifact.workflow_id,
        links=_links_of(request, artifact, options),
    )


@router.post(
    "/artifacts/{artifact_id}/reprocess",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReprocessingAccepted,
    responses=_ERRORS,
    summary="Process the artifact again, as a new workflow run",
)
def reprocess(artifact_id: UUID, request: Request, artifacts: Artifacts) -> ReprocessingAccepted:
    structlog.contextvars.bind_contextvars(artifact_id=str(artifact_id))
    run = artifacts.request_reprocessing(artifact_id)
    log.info("reprocessing_requested", run=run)
    return ReprocessingAccepted(
        id=artifact_id,
        run=run,
        status="uploaded",
        workflow_id=workflow_id_for(artifact_id, run),
        links=Links(self=request.url_for("get_artifact", artifact_id=artifact_id).path),
    )


@router.post(
    "/artifacts/{artifact_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancellationAccepted,
    responses=_ERRORS,
    summary="Stop the artifact's run in flight; it then records the status cancelled",
)
def cancel(artifact_id: UUID, request: Request, artifacts: Artifacts) -> CancellationAccepted:
    structlog.contextvars.bind_contextvars(artifact_id=str(artifact_id))
    # Recorded as an event: the pipeline worker asks Temporal to cancel the run, so the
    # request survives Temporal being away and is carried out once.
    run = artifacts.request_cancellation(artifact_id)
    log.info("cancellation_requested", run=run)
    artifact = artifacts.get_artifact(artifact_id)
    return CancellationAccepted(
        id=artifact_id,
        run=run,
        status=artifact.status.value,
        workflow_id=workflow_id_for(artifact_id, run),
        links=Links(self=request.url_for("get_artifact", artifact_id=artifact_id).path),
    )


def _links_of(request: Request, artifact: Artifact, options: ApiOptions) -> ArtifactLinks:
    path = request.url_for("get_artifact", artifact_id=artifact.id).path
    base = options.temporal_ui_url.rstrip("/")
    namespace, workflow_id = quote(options.temporal_namespace), quote(artifact.workflow_id)
    return ArtifactLinks(
        self=path,
        content=f"{path}/content",
        text=f"{path}/text" if artifact.text_locations else None,
        markdown=f"{path}/markdown" if artifact.markdown_location else None,
        chunks=f"{path}/chunks" if artifact.chunks_location else None,
        pages=f"{path}/pages" if artifact.pages_location else None,
        reprocess=f"{path}/reprocess",
        cancel=f"{path}/cancel",
        temporal=f"{base}/namespaces/{namespace}/workflows/{workflow_id}",
    )
