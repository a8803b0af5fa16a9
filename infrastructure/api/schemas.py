"""The API's response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from domain.artifact import Artifact


class Links(BaseModel):
    self: str


class ArtifactAccepted(BaseModel):
    id: UUID
    status: str
    links: Links


class ProcessingResults(BaseModel):
    mime_type: str


class ProcessingFailureView(BaseModel):
    reason: str
    message: str


class ArtifactView(BaseModel):
    id: UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    mime_type: str | None
    status: Literal["uploaded", "processing", "processed", "failed"]
    results: ProcessingResults | None
    failure: ProcessingFailureView | None
    workflow_id: str
    created_at: datetime
    updated_at: datetime
    links: Links

    @classmethod
    def of(cls, artifact: Artifact, *, workflow_id: str, url: str) -> ArtifactView:
        results = (
            ProcessingResults(mime_type=artifact.mime_type)
            if artifact.mime_type is not None
            else None
        )
        failure = (
            ProcessingFailureView(
                reason=artifact.failure_reason, message=artifact.failure_message or ""
            )
            if artifact.failure_reason is not None
            else None
        )
        return cls(
            id=artifact.id,
            filename=artifact.filename,
            content_type=artifact.content_type,
            size=artifact.size,
            sha256=artifact.sha256,
            mime_type=artifact.mime_type,
            status=artifact.status.value,
            results=results,
            failure=failure,
            workflow_id=workflow_id,
            created_at=artifact.created_on,
            updated_at=artifact.modified_on,
            links=Links(self=url),
        )


class ErrorBody(BaseModel):
    error: str
    detail: str


class HealthCheck(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    event_store: HealthCheck
    temporal: HealthCheck
