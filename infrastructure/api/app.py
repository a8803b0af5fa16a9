"""The HTTP API: upload artifacts, ask what happened to them.

Routes stay thin: they call the application and map its errors to HTTP statuses here,
in one place. The upload route is ``async`` because it streams; eventsourcing is
synchronous, so its calls run in the thread pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import quote
from uuid import UUID

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from application.artifacts import ArtifactNotFound, ArtifactsApplication, CreatedArtifact
from application.catalog import ArtifactCatalog, InvalidCursor
from application.ports import BlobNotFound, BlobStore
from domain.artifact import Artifact, ArtifactError, ReprocessingNotAllowed, workflow_id_for
from infrastructure.api.observability import ApiMetrics, RequestObservation
from infrastructure.api.pages import router as pages
from infrastructure.api.schemas import (
    ArtifactAccepted,
    ArtifactLinks,
    ArtifactList,
    ArtifactListItem,
    ArtifactView,
    ErrorBody,
    Health,
    HealthCheck,
    Links,
    Liveness,
    ReprocessingAccepted,
)
from infrastructure.api.security import Unauthorized, api_key_guard
from infrastructure.api.uploads import (
    UploadRejected,
    content_key,
    idempotency_key_of,
    multipart_boundary,
    receive_upload,
)

log = structlog.get_logger(__name__)

# Answers "is Temporal reachable?"; None when the API runs without Temporal (tests).
TemporalProbe = Callable[[], Awaitable[None]]

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


def _artifacts(request: Request) -> ArtifactsApplication:
    artifacts: ArtifactsApplication = request.app.state.artifacts
    return artifacts


Artifacts = Annotated[ArtifactsApplication, Depends(_artifacts)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 415, 422, 503)
}
_ATTACHMENT = {200: {"content": {"application/octet-stream": {}}}, **_ERRORS}
_TEXT_ATTACHMENT = {200: {"content": {"text/plain; charset=utf-8": {}}}, **_ERRORS}
# Every route behind the key documents its 401, also those without other errors.
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}}
_CHUNK = 256 * 1024
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
Status = Literal["uploaded", "processing", "processed", "failed"]


def create_app(
    *,
    artifacts: ArtifactsApplication,
    blob_store: BlobStore,
    max_upload_bytes: int,
    temporal_probe: TemporalProbe | None = None,
    catalog: ArtifactCatalog | None = None,
    read_model_wait_seconds: float = 1.0,
    temporal_ui_url: str = "http://127.0.0.1:8233",
    temporal_namespace: str = "default",
    lifespan: Callable[[FastAPI], Any] | None = None,
    api_keys: Sequence[str] = (),
    dedupe_by_sha256: bool = False,
) -> FastAPI:
    app = FastAPI(
        title="Artifact processing",
        summary="Upload files; each is processed once by a durable Temporal workflow.",
        version="0.1.0",
        lifespan=lifespan,
    )

    app.state.artifacts = artifacts
    # Every route but /health is on this router, so it needs an API key (when keys are set).
    router = APIRouter(dependencies=[Depends(api_key_guard(api_keys))], responses=_UNAUTHORIZED)
    metrics = ApiMetrics()
    app.add_middleware(RequestObservation, metrics=metrics)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, err: Unauthorized) -> JSONResponse:
        return _error(
            status.HTTP_401_UNAUTHORIZED,
            "unauthorized",
            str(err),
            headers={"WWW-Authenticate": "Bearer"},
        )

    # The web page at / (infrastructure/api/pages.py): open like /health, because a browser
    # loading a page sends no key; the page's own API calls carry it.
    app.include_router(pages)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        # The documented ErrorBody, not FastAPI's own list: the shape of the routes' errors.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        if err.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            # Starlette's Allow names only the first route matching the path; GET and POST
            # /artifacts are two routes, so list the methods of every one.
            methods = [
                method
                for method in _HTTP_METHODS
                if any(
                    route.matches({**request.scope, "method": method})[0] is Match.FULL
                    for route in app.router.routes
                )
            ]
            headers = {**(err.headers or {}), "Allow": ", ".join(methods)}
            err = StarletteHTTPException(err.status_code, err.detail, headers)
        return await http_exception_handler(request, err)

    @app.exception_handler(ArtifactNotFound)
    async def not_found(_: Request, err: ArtifactNotFound) -> JSONResponse:
        return _error(status.HTTP_404_NOT_FOUND, "artifact_not_found", str(err))

    @app.exception_handler(UploadRejected)
    async def upload_rejected(_: Request, err: UploadRejected) -> JSONResponse:
        return _error(err.status_code, err.code, str(err))

    @app.exception_handler(ReprocessingNotAllowed)
    async def reprocessing_not_allowed(_: Request, err: ReprocessingNotAllowed) -> JSONResponse:
        return _error(status.HTTP_409_CONFLICT, "reprocessing_not_allowed", str(err))

    @app.exception_handler(ArtifactError)
    async def invalid_artifact(_: Request, err: ArtifactError) -> JSONResponse:
        return _error(status.HTTP_422_UNPROCESSABLE_ENTITY, "invalid_artifact", str(err))

    @app.exception_handler(InvalidCursor)
    async def invalid_cursor(_: Request, err: InvalidCursor) -> JSONResponse:
        return _error(status.HTTP_400_BAD_REQUEST, "invalid_cursor", str(err))

    def temporal_link(workflow_id: str) -> str:
        base = temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{quote(temporal_namespace)}/workflows/{quote(workflow_id)}"

    def links_of(request: Request, artifact: Artifact, workflow_id: str) -> ArtifactLinks:
        path = request.url_for("get_artifact", artifact_id=artifact.id).path
        return ArtifactLinks(
            self=path,
            content=f"{path}/content",
            text=f"{path}/text" if artifact.text_locations else None,
            reprocess=f"{path}/reprocess",
            temporal=temporal_link(workflow_id),
        )

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
            **_ERRORS,
        },
        openapi_extra=_UPLOAD_BODY,
        summary="Upload a file (multipart field 'file'); processing starts on its own",
    )
    async def upload_artifact(
        request: Request, response: Response, artifacts: Artifacts
    ) -> ArtifactAccepted:
        key = idempotency_key_of(request, request.state.principal)
        # A retry is the same request: one that is not multipart is refused like any other.
        multipart_boundary(request)
        # A retry of a completed request is answered before its body is read or stored.
        existing = await run_in_threadpool(artifacts.artifact_for_key, key) if key else None
        if existing is not None:
            created = CreatedArtifact(id=existing, replayed=True)
        else:
            upload = await receive_upload(request, blob_store, max_bytes=max_upload_bytes)
            if key is None and dedupe_by_sha256:
                key = content_key(request.state.principal, upload.blob.sha256)
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
        status_: Annotated[Status | None, Query(alias="status")] = None,
        mime_type: Annotated[str | None, Query(max_length=255)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> ArtifactList | JSONResponse:
        if catalog is None:
            return _error(503, "read_model_unavailable", "the read model is not configured")
        # Read-your-writes: this process's own uploads show up in the list it serves next,
        # within a short bound (the read worker follows the event store asynchronously).
        position = artifacts.last_written_position
        if position:
            await run_in_threadpool(catalog.wait_for, position, read_model_wait_seconds)
        page = await run_in_threadpool(
            lambda: catalog.list_artifacts(
                status=status_, mime_type=mime_type, limit=limit, cursor=cursor
            )
        )
        return ArtifactList(
            items=[
                ArtifactListItem.of(
                    item, url=request.url_for("get_artifact", artifact_id=item.id).path
                )
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
    def get_artifact(artifact_id: UUID, request: Request, artifacts: Artifacts) -> ArtifactView:
        structlog.contextvars.bind_contextvars(artifact_id=str(artifact_id))
        artifact = artifacts.get_artifact(artifact_id)
        workflow_id = artifact.workflow_id
        return ArtifactView.of(
            artifact,
            history=artifacts.history(artifact_id),
            workflow_id=workflow_id,
            links=links_of(request, artifact, workflow_id),
        )

    @router.get(
        "/artifacts/{artifact_id}/content",
        response_class=StreamingResponse,
        response_model=None,
        responses=_ATTACHMENT,
        summary="The original bytes, as an attachment",
    )
    def get_content(artifact_id: UUID, artifacts: Artifacts) -> StreamingResponse:
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
        responses=_TEXT_ATTACHMENT,
        summary="The extracted text (UTF-8; PDF pages end with a form feed), as an attachment",
    )
    def get_text(artifact_id: UUID, artifacts: Artifacts) -> StreamingResponse | JSONResponse:
        artifact = artifacts.get_artifact(artifact_id)
        if not artifact.text_locations:
            return _error(404, "no_text", f"artifact {artifact_id} has no extracted text")

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

    @router.post(
        "/artifacts/{artifact_id}/reprocess",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ReprocessingAccepted,
        responses=_ERRORS,
        summary="Process the artifact again, as a new workflow run",
    )
    def reprocess(
        artifact_id: UUID, request: Request, artifacts: Artifacts
    ) -> ReprocessingAccepted:
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

    @app.get("/health", response_model=Liveness, summary="Liveness: the process answers")
    async def health() -> Liveness:
        return Liveness(status="ok")

    @router.get(
        "/ready",
        response_model=Health,
        responses={503: {"model": Health}},
        summary="Readiness: the event store, the blob store and Temporal are reachable",
    )
    async def ready(artifacts: Artifacts) -> JSONResponse:
        event_store, blobs, temporal = await asyncio.gather(
            _check(lambda: run_in_threadpool(artifacts.recorder.max_notification_id)),
            _check(lambda: run_in_threadpool(blob_store.check)),
            _check(temporal_probe) if temporal_probe else _not_configured(),
        )
        ok = event_store.ok and blobs.ok and temporal.ok
        body = Health(
            status="ok" if ok else "degraded",
            event_store=event_store,
            blob_store=blobs,
            temporal=temporal,
        )
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        summary="Prometheus metrics of this process",
    )
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    return app


async def _check(probe: Callable[[], Awaitable[Any]], within: float = 3.0) -> HealthCheck:
    try:
        await asyncio.wait_for(probe(), timeout=within)
    except Exception as err:
        return HealthCheck(ok=False, detail=f"unreachable: {err!r}")
    return HealthCheck(ok=True, detail="reachable")


async def _not_configured() -> HealthCheck:
    return HealthCheck(ok=False, detail="not configured")


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


def _error(
    status_code: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        ErrorBody(error=code, detail=detail).model_dump(), status_code=status_code, headers=headers
    )
