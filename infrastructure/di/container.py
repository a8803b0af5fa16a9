"""The composition root: the one place that builds the service's parts.

Only entrypoints (the API, the pipeline worker, the Temporal worker) call it. Tests
build the parts they need directly, with fakes at the ports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from lagom import Container, Singleton, injectable
from temporalio.client import Client

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactCatalog
from application.ports import BlobStore, Summarizer, WorkflowOrchestrator
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.eventstore import application_env, created_alongside_others

if TYPE_CHECKING:
    from fastapi import FastAPI

    from infrastructure.api.dependencies import TemporalProbe
    from infrastructure.temporal.activities import ProcessingOptions


def build_container(settings: Settings | None = None) -> Container:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    container = Container()
    container[Settings] = settings
    container[ArtifactsApplication] = Singleton(
        lambda: created_alongside_others(
            lambda: ArtifactsApplication(env=application_env(settings))
        )
    )
    container[BlobStore] = Singleton(lambda: LocalBlobStore(settings.blob_dir))  # type: ignore[type-abstract]
    container[Summarizer] = Singleton(lambda: summarizer(settings))  # type: ignore[type-abstract]
    return container


def summarizer(settings: Settings) -> Summarizer:
    """The configured summarizer: offline LexRank, or an OpenAI-compatible endpoint."""
    # Imported here: sumy (nltk) and openai take seconds to import, and only the Temporal
    # worker summarizes; the API and the other workers start without them.
    from infrastructure.processing.summarizer import (
        LexRankSummarizer,
        OpenAICompatibleSummarizer,
    )

    if settings.summarizer == "openai":
        # Settings refuses SUMMARIZER=openai without these.
        assert settings.openai_base_url is not None
        assert settings.openai_model is not None
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        return OpenAICompatibleSummarizer(
            base_url=settings.openai_base_url,
            api_key=key,
            model=settings.openai_model,
            pipeline_version=settings.pipeline_version,
            timeout=settings.openai_timeout_seconds,
        )
    return LexRankSummarizer(
        pipeline_version=settings.pipeline_version, sentences=settings.summary_sentences
    )


def processing_options(settings: Settings) -> ProcessingOptions:
    # Imported here: they load libmagic, Pillow and the PDF code, which only the Temporal
    # worker runs; the API process must start without them.
    from infrastructure.processing.limits import ProcessLimits
    from infrastructure.processing.pdf import PdfLimits
    from infrastructure.temporal.activities import ProcessingOptions

    return ProcessingOptions(
        allowed_types=settings.allowed_types,
        pdf=PdfLimits(
            max_pages=settings.pdf_max_pages,
            page_batch=settings.pdf_page_batch,
            process=ProcessLimits(
                cpu_seconds=settings.pdf_cpu_seconds,
                memory_bytes=settings.pdf_memory_mb * 1024 * 1024,
                wall_seconds=settings.pdf_timeout_seconds,
            ),
        ),
        text_max_bytes=settings.text_max_bytes,
        image_max_pixels=settings.image_max_pixels,
    )


def add_temporal(container: Container, client: Client) -> None:
    """Registers the process's one Temporal client and what is built on it."""
    # Imported here: the orchestrator names the workflow class, so it loads the workflow
    # module, which the API process does not run.
    from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator

    settings = container[Settings]
    container[Client] = client
    container[WorkflowOrchestrator] = Singleton(  # type: ignore[type-abstract]
        lambda: TemporalWorkflowOrchestrator(client, settings.temporal_task_queue)
    )


def api_app(
    settings: Settings | None = None,
    *,
    artifacts: ArtifactsApplication | None = None,
    blob_store: BlobStore | None = None,
    catalog: ArtifactCatalog | None = None,
    temporal_probe: TemporalProbe | None = None,
) -> FastAPI:
    """The API process: the app uvicorn serves, on the real adapters unless given others.

    Without a ``temporal_probe`` the app connects its Temporal client in its lifespan,
    lazily, so that it serves uploads even while Temporal is down (``/ready`` says so). On
    shutdown it closes what it built here.
    """
    # Imported here: the worker processes never load the web framework.
    from infrastructure.api.app import create_app
    from infrastructure.api.dependencies import ApiOptions, ApiServices
    from infrastructure.read_model import artifact_catalog
    from infrastructure.temporal.connection import connect

    settings = settings or Settings()
    container = build_container(settings)
    closes: list[Callable[[], None]] = []
    if artifacts is None:
        artifacts = container[ArtifactsApplication]
        closes.append(artifacts.close)
    if catalog is None:
        view = artifact_catalog(settings)
        closes.append(view.close)
        catalog = view
    client: Client | None = None

    async def probe_temporal() -> None:
        assert client is not None, "probed before the app started"
        await client.service_client.check_health()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal client
        if temporal_probe is None:
            client = await connect(settings, lazy=True)
        try:
            yield
        finally:
            for close in closes:
                close()

    services = ApiServices(
        artifacts=artifacts,
        blob_store=blob_store or container.partial(_blob_store)(),
        catalog=catalog,
        temporal_probe=temporal_probe or probe_temporal,
        options=ApiOptions(
            max_upload_bytes=settings.max_upload_bytes,
            read_model_wait_seconds=settings.read_model_wait_seconds,
            temporal_ui_url=settings.temporal_ui_url,
            temporal_namespace=settings.temporal_namespace,
            api_keys=tuple(settings.api_key_list),
            dedupe_by_sha256=settings.dedupe_by_sha256,
        ),
    )
    return create_app(services, lifespan=lifespan)


def _blob_store(blob_store: BlobStore = injectable) -> BlobStore:
    # lagom injects the port named by the annotation; container[BlobStore] would hand mypy a
    # Protocol where it wants a concrete class.
    return blob_store
