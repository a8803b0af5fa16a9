"""The HTTP API: upload artifacts, ask what happened to them.

Routes stay thin: they call the application and map its errors to HTTP statuses here,
in one place. The upload route is ``async`` because it streams; eventsourcing is
synchronous, so its calls run in the thread pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from application.artifacts import ArtifactNotFound, ArtifactsApplication
from application.ports import BlobStore
from domain.artifact import ArtifactError
from infrastructure.api.schemas import (
    ArtifactAccepted,
    ArtifactView,
    ErrorBody,
    Health,
    HealthCheck,
    Links,
)
from infrastructure.api.uploads import UploadRejected, receive_upload
from infrastructure.temporal.orchestrator import workflow_id_for

log = structlog.get_logger(__name__)

# Answers "is Temporal reachable?"; None when the API runs without Temporal (tests).
TemporalProbe = Callable[[], Awaitable[None]]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def _artifacts(request: Request) -> ArtifactsApplication:
    artifacts: ArtifactsApplication = request.app.state.artifacts
    return artifacts


Artifacts = Annotated[ArtifactsApplication, Depends(_artifacts)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 413, 415, 422)
}


def create_app(
    *,
    artifacts: ArtifactsApplication,
    blob_store: BlobStore,
    max_upload_bytes: int,
    temporal_probe: TemporalProbe | None = None,
    lifespan: Callable[[FastAPI], Any] | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Artifact processing",
        summary="Upload files; each is processed once by a durable Temporal workflow.",
        version="0.1.0",
        lifespan=lifespan,
    )

    app.state.artifacts = artifacts

    @app.exception_handler(ArtifactNotFound)
    async def not_found(_: Request, err: ArtifactNotFound) -> JSONResponse:
        return _error(status.HTTP_404_NOT_FOUND, "artifact_not_found", str(err))

    @app.exception_handler(UploadRejected)
    async def upload_rejected(_: Request, err: UploadRejected) -> JSONResponse:
        return _error(err.status_code, err.code, str(err))

    @app.exception_handler(ArtifactError)
    async def invalid_artifact(_: Request, err: ArtifactError) -> JSONResponse:
        return _error(status.HTTP_422_UNPROCESSABLE_ENTITY, "invalid_artifact", str(err))

    @app.post(
        "/artifacts",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ArtifactAccepted,
        responses=_ERRORS,
        openapi_extra=_UPLOAD_BODY,
        summary="Upload a file (multipart field 'file'); processing starts on its own",
    )
    async def upload_artifact(
        request: Request, response: Response, artifacts: Artifacts
    ) -> ArtifactAccepted:
        upload = await receive_upload(request, blob_store, max_bytes=max_upload_bytes)
        artifact_id = await run_in_threadpool(
            lambda: artifacts.create_artifact(
                filename=upload.filename,
                content_type=upload.content_type,
                size=upload.blob.size,
                sha256=upload.blob.sha256,
                storage_location=upload.blob.location,
            )
        )
        url = str(request.url_for("get_artifact", artifact_id=artifact_id).path)
        response.headers["Location"] = url
        log.info(
            "artifact_created",
            artifact_id=str(artifact_id),
            size=upload.blob.size,
            content_type=upload.content_type,
        )
        return ArtifactAccepted(id=artifact_id, status="uploaded", links=Links(self=url))

    @app.get(
        "/artifacts/{artifact_id}",
        response_model=ArtifactView,
        responses=_ERRORS,
        summary="What happened to my file",
    )
    def get_artifact(artifact_id: UUID, request: Request, artifacts: Artifacts) -> ArtifactView:
        artifact = artifacts.get_artifact(artifact_id)
        return ArtifactView.of(
            artifact, workflow_id=workflow_id_for(artifact.id), url=request.url.path
        )

    @app.get(
        "/health",
        response_model=Health,
        responses={503: {"model": Health}},
        summary="Whether the event store and Temporal are reachable",
    )
    async def health(artifacts: Artifacts) -> JSONResponse:
        event_store, temporal = await asyncio.gather(
            _check(lambda: run_in_threadpool(artifacts.recorder.max_notification_id)),
            _check(temporal_probe) if temporal_probe else _not_configured(),
        )
        ok = event_store.ok and temporal.ok
        body = Health(status="ok" if ok else "degraded", event_store=event_store, temporal=temporal)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    return app


async def _check(probe: Callable[[], Awaitable[Any]], within: float = 3.0) -> HealthCheck:
    try:
        await asyncio.wait_for(probe(), timeout=within)
    except Exception as err:
        return HealthCheck(ok=False, detail=f"unreachable: {err!r}")
    return HealthCheck(ok=True, detail="reachable")


async def _not_configured() -> HealthCheck:
    return HealthCheck(ok=False, detail="not configured")


def _error(status_code: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(ErrorBody(error=code, detail=detail).model_dump(), status_code=status_code)
