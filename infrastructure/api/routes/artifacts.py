"""``/artifacts``: upload a file, list artifacts, see one (with links to its results),
reprocess, cancel, delete for good.

Every route is scoped to the caller's tenant (an admin reaches every tenant's): another
tenant's artifact is answered exactly as an unknown id (``security.owned_artifact``).

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
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from application.artifacts import ArtifactsApplication, CreatedArtifact
from application.erasure import Erasure, by_admin, by_tenant
from domain.artifact import TENANT, Artifact, workflow_id_for
from infrastructure.api.dependencies import (
    ApiOptions,
    Artifacts,
    Blobs,
    CallerDep,
    Catalog,
    Erasers,
    Metrics,
    Options,
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
    ErasureAccepted,
    Links,
    ReprocessingAccepted,
)
from infrastructure.api.security import owned_artifact
from infrastructure.api.uploads import (
    content_key,
    idempotency_key_of,
    multipart_boundary,
    receive_upload,
)

log = structlog.get_logger(__name__)

router = APIRouter(dependencies=[authenticated], responses=documented(401))

_ERRORS = documented(400, 401, 404, 409, 410, 413, 415, 422, 503)
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
    caller: CallerDep,
    quota: Quota,
) -> ArtifactAccepted:
    # Keys and content are scoped to the tenant: the same key or the same bytes from
    # another tenant make a new artifact, so no answer says what another tenant sent.
    key = idempotency_key_of(request, caller.tenant)
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
            key = content_key(caller.tenant, upload.blob.sha256)
            # The same bytes again after their artifact was erased are a new artifact,
            # not the erased one (whose id the content key still names).
            if await run_in_threadpool(_erased_for, artifacts, key):
                key = None
        created = await run_in_threadpool(
            lambda: artifacts.create_artifact_once(
                idempotency_key=key,
                filename=upload.filename,
                content_type=upload.content_type,
                size=upload.blob.size,
                sha256=upload.blob.sha256,
                storage_location=upload.blob.location,
                tenant=caller.tenant,
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
    summary="The caller's artifacts, newest first, from the read model (an admin's: every "
    "tenant's, or one's with ?tenant=)",
)
async def list_artifacts(
    request: Request,
    artifacts: Artifacts,
    catalog: Catalog,
    options: Options,
    caller: CallerDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    mime_type: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    tenant: Annotated[
        str | None,
        Query(pattern=TENANT.pattern, description="admins only: one tenant's artifacts"),
    ] = None,
) -> ArtifactList:
    # Everyone else sees their own tenant's, whatever ?tenant= says: naming another one
    # is answered as naming none, so it cannot tell whether that tenant exists.
    scope = tenant if caller.admin else caller.tenant
    if catalog is None:
        raise ReadModelUnavailable("the read model is not configured")
    # Read-your-writes: this process's own uploads show up in the list it serves next,
    # within a short bound (the read worker follows the event store asynchronously).
    position = artifacts.last_written_position
    if position:
        await run_in_threadpool(catalog.wait_for, position, options.read_model_wait_seconds)
    page = await run_in_threadpool(
        lambda: catalog.list_artifacts(
            status=status_, mime_type=mime_type, limit=limit, cursor=cursor, tenant=scope
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
    artifact_id: UUID, request: Request, artifacts: Artifacts, options: Options, caller: CallerDep
) -> ArtifactView:
    structlog.contextvars.bind_contextvars(artifact_id=str(artifact_id))
    artifact = owned_artifact(artifacts, artifact_id, caller)
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
def reprocess(
    artifact_id: UUID, request: Request, artifacts: Artifacts, caller: CallerDep
) -> ReprocessingAccepted:
    structlog.contextvars.bind_contextvars(artifact_id=str(artifact_id))
    owned_artifact(artifacts, artifact_id, caller)
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
def cancel(
    artifact_id: UUID, request: Request, artifacts: Artifacts, caller: CallerDep
) -> CancellationAccepted:
    structlog.contextvars.bind_contextvars(artifact_id=str(artifact_id))
    owned_artifact(artifacts, artifact_id, caller)
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


@router.delete(
    "/artifacts/{artifact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        202: {
            "model": ErasureAccepted,
            "description": "A run was in flight: it is being cancelled, and the artifact "
            "is erased once it has stopped",
        },
        **documented(401, 404, 422, 503),
    },
    summary="Delete the artifact for good: its bytes, results, list row and personal data "
    "(a second delete is a no-op)",
)
def delete_artifact(
    artifact_id: UUID, request: Request, artifacts: Artifacts, eraser: Erasers, caller: CallerDep
) -> Response:
    structlog.contextvars.bind_contextvars(artifact_id=str(artifact_id))
    artifact = owned_artifact(artifacts, artifact_id, caller, erased=True)
    if artifact.erased:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    own = artifact.tenant == caller.tenant
    by = by_tenant(caller.tenant) if own else by_admin(caller.principal)
    # The id only (bound above): the filename is personal data, and logs outlive erasure.
    log.info("erasure_requested", by=by)
    if eraser.erase(artifact_id, by=by) is Erasure.PENDING:
        url = request.url_for("get_artifact", artifact_id=artifact_id).path
        accepted = ErasureAccepted(id=artifact_id, links=Links(self=url))
        return JSONResponse(accepted.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _erased_for(artifacts: ArtifactsApplication, key: str) -> bool:
    existing = artifacts.artifact_for_key(key)
    return existing is not None and artifacts.get_artifact(existing).erased


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
        delete=path,
        temporal=f"{base}/namespaces/{namespace}/workflows/{workflow_id}",
    )
