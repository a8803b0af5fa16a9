"""The API's response shapes."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, RootModel

from application.artifacts import HistoryEntry
from application.catalog import ArtifactRow
from domain.artifact import Artifact, ArtifactStatus


class Links(BaseModel):
    self: str


class ArtifactAccepted(BaseModel):
    id: UUID
    status: str
    links: Links


class ProcessingResults(BaseModel):
    mime_type: str
    kind: str
    page_count: int | None
    char_count: int
    details: dict[str, str | int | bool]
    language: str | None = Field(
        description="the text's language, ISO 639-1 (`en`); null when there is too little "
        "text to tell"
    )
    warnings: list[str] = Field(
        description="what a reader of the results should know; `no_text`: the document has "
        "no text at all, not even by OCR (it is still processed); `truncated`: only the start "
        "of a long text file was read; `ocr_timeout`: OCR of a page reached its deadline, the "
        "page has the words read by then"
    )


class SummaryView(BaseModel):
    text: str
    source: str
    model: str
    pipeline_version: str


class ProcessingFailureView(BaseModel):
    reason: str
    message: str


class HistoryItem(BaseModel):
    type: str
    at: datetime
    version: int


class ArtifactLinks(BaseModel):
    """Where to fetch the artifact and its results; a result's link is null until it exists."""

    self: str
    content: str
    text: str | None
    markdown: str | None
    chunks: str | None
    pages: str | None
    reprocess: str
    cancel: str
    delete: str
    temporal: str


class ArtifactView(BaseModel):
    id: UUID
    tenant: str
    filename: str
    content_type: str
    size: int
    sha256: str
    mime_type: str | None
    status: Literal["uploaded", "processing", "processed", "failed", "cancelled", "erased"]
    run: int
    results: ProcessingResults | None
    summary: SummaryView | None
    failure: ProcessingFailureView | None
    workflow_id: str
    history: list[HistoryItem]
    created_at: datetime
    updated_at: datetime
    links: ArtifactLinks

    @classmethod
    def of(
        cls,
        artifact: Artifact,
        *,
        history: list[HistoryEntry],
        workflow_id: str,
        links: ArtifactLinks,
    ) -> ArtifactView:
        results = (
            ProcessingResults(
                mime_type=artifact.mime_type or "",
                kind=artifact.kind or "",
                page_count=artifact.page_count,
                char_count=artifact.char_count or 0,
                details=artifact.details,
                language=artifact.language,
                warnings=list(artifact.warnings),
            )
            if artifact.status is ArtifactStatus.PROCESSED
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
            tenant=artifact.tenant,
            filename=artifact.filename,
            content_type=artifact.content_type,
            size=artifact.size,
            sha256=artifact.sha256,
            mime_type=artifact.mime_type,
            status=artifact.status.value,
            run=artifact.run,
            results=results,
            summary=SummaryView(**artifact.summary) if artifact.summary else None,
            failure=failure,
            workflow_id=workflow_id,
            history=[HistoryItem(type=h.type, at=h.at, version=h.version) for h in history],
            created_at=artifact.created_on,
            updated_at=artifact.modified_on,
            links=links,
        )


class Chunk(BaseModel):
    """A piece of the text for retrieval: it stays inside one section when it can."""

    index: int = Field(description="its place among the chunks, from 0")
    text: str
    headings: list[str] = Field(description="the headings it sits under, outermost first")
    pages: list[int] | None = Field(
        description="[first, last] page it spans (1-based); null for an unpaged document"
    )
    chars: int


class ChunkList(RootModel[list[Chunk]]):
    """The chunks of ``GET /artifacts/{id}/chunks``, in document order."""


class PageFacts(BaseModel):
    """One page of a paged document (PDF page, slide, image frame)."""

    number: int = Field(description="1-based")
    source: Literal["text", "ocr", "none"] = Field(
        description="where its text came from: its own text layer, OCR, or nowhere"
    )
    confidence: float | None = Field(
        description="OCR's mean word confidence, 0-100, when the source is ocr"
    )
    chars: int


class PageList(RootModel[list[PageFacts]]):
    """The pages of ``GET /artifacts/{id}/pages``, in order."""


class ArtifactListItem(BaseModel):
    id: UUID
    tenant: str
    filename: str
    status: str
    mime_type: str | None
    size: int
    page_count: int | None
    failure_reason: str | None
    has_summary: bool
    created_at: datetime
    updated_at: datetime
    links: Links

    @classmethod
    def of(cls, item: ArtifactRow, *, url: str) -> ArtifactListItem:
        return cls(**{**asdict(item), "links": Links(self=url)})


class ArtifactList(BaseModel):
    items: list[ArtifactListItem]
    next_cursor: str | None


class ReprocessingAccepted(BaseModel):
    id: UUID
    run: int
    status: str
    workflow_id: str
    links: Links


class ErasureAccepted(BaseModel):
    """An erasure begun: the run in flight is being cancelled; once it has stopped, the
    artifact is erased (and answers 410)."""

    id: UUID
    status: Literal["erasing"] = "erasing"
    links: Links


class CancellationAccepted(BaseModel):
    """A cancellation asked for: the run stops, then records ``cancelled``."""

    id: UUID
    run: int
    status: str
    workflow_id: str
    links: Links


class HealthCheck(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    event_store: HealthCheck
    blob_store: HealthCheck
    temporal: HealthCheck


class DeadLetterView(BaseModel):
    """An event a worker could not handle, recorded as it moved on (GET /dead-letters)."""

    consumer: str
    position: int
    topic: str
    originator_id: str
    originator_version: int
    error: str
    status: Literal["open", "retry", "resolved"]
    attempts: int
    recorded_at: datetime
    updated_at: datetime | None


class DeadLetterList(BaseModel):
    items: list[DeadLetterView]


class Liveness(BaseModel):
    status: Literal["ok"]
