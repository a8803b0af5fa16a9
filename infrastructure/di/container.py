"""The composition root: one function per process, each returning it ready to run.

Each builds the process from settings with the real adapters; tests, bench and the fault
suite pass fakes or test settings by keyword. Every entrypoint only sets up logging and
signals and calls its function here (``infrastructure.signals.run_process``).

A process imports only what it runs: what only the Temporal worker needs (the activities,
the parsers, the workflow module, the summarizers) is imported inside the functions that
build it, so the API and the event-store workers never load libmagic, Pillow or PDFium.
"""

# lagom keys each service by its port, and ports are Protocols or ABCs: mypy's type-abstract
# check assumes a type passed as type[X] is instantiated, which lagom never does to a key it
# has a definition for.
# mypy: disable-error-code="type-abstract"

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from eventsourcing.persistence import TrackingRecorder
from lagom import Container, Singleton
from temporalio.client import Client

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactCatalog
from application.erasure import Eraser
from application.ports import BlobStore, KeyStore, Summarizer, WorkflowOrchestrator
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.eventstore import (
    application_env,
    created_alongside_others,
    key_store,
    tracking_recorder,
)
from infrastructure.eventstore.consumer import ConsumerProcess
from infrastructure.eventstore.dead_letters import DeadLetters, DeadLetterStore
from infrastructure.eventstore.shredding import sealing
from infrastructure.healthcheck import heartbeat_path
from infrastructure.pipeline_worker import PipelineWorker
from infrastructure.read_model import ArtifactListView, artifact_catalog
from infrastructure.read_worker import ReadWorker
from infrastructure.signals import Process
from infrastructure.sweep_orphans import OrphanSweep
from infrastructure.temporal.connection import ConnectingProcess, metrics_runtime

if TYPE_CHECKING:
    from fastapi import FastAPI
    from temporalio.worker import Interceptor

    from infrastructure.api.dependencies import TemporalProbe
    from infrastructure.processing.options import ProcessingOptions
    from infrastructure.temporal.activities import ArtifactActivities


def build_container(
    settings: Settings | None = None, *, artifacts: ArtifactsApplication | None = None
) -> Container:
    """What every process shares: its settings, its one ``ArtifactsApplication`` (sealing
    the personal fields of the events under each artifact's key), the key store and the
    ``Eraser``."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    container = Container()
    container[Settings] = settings
    container[KeyStore] = Singleton(lambda: key_store(settings))
    # lagom refuses a second definition of a key: a given application is the first.
    if artifacts is not None:
        container[ArtifactsApplication] = artifacts
    else:
        container[ArtifactsApplication] = Singleton(
            lambda c: created_alongside_others(
                lambda: ArtifactsApplication(
                    env=application_env(settings), sealing=sealing(c[KeyStore])
                )
            )
        )
    # Each process that erases puts in its blob store.
    container[Eraser] = lambda c: Eraser(c[ArtifactsApplication], c[BlobStore], c[KeyStore])
    return container


def pipeline_worker(
    settings: Settings | None = None,
    *,
    orchestrator: WorkflowOrchestrator | None = None,
    artifacts: ArtifactsApplication | None = None,
) -> Process:
    """The pipeline worker: a workflow start for each new artifact and reprocessing run.

    Without ``orchestrator`` it starts workflows on Temporal, connecting first.
    """
    container = build_container(settings, artifacts=artifacts)
    settings = container[Settings]
    container[TrackingRecorder] = Singleton(
        lambda: tracking_recorder(settings, PipelineWorker.name)
    )
    container[ConsumerProcess] = lambda c: ConsumerProcess(
        PipelineWorker(
            c[ArtifactsApplication],
            c[TrackingRecorder],
            c[WorkflowOrchestrator],
            max_in_flight=settings.pipeline_max_in_flight,
            stall_seconds=settings.subscription_stall_seconds,
        ),
        heartbeat=heartbeat_path(settings, PipelineWorker.name),
        metrics_host=settings.metrics_host,
        metrics_port=settings.pipeline_worker_metrics_port,
        closing=[c[ArtifactsApplication].close],
    )
    if orchestrator is not None:
        container[WorkflowOrchestrator] = orchestrator
        return container[ConsumerProcess]

    # Imported here: only the processes that start workflows need the Temporal adapter.
    from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator

    container[WorkflowOrchestrator] = lambda c: TemporalWorkflowOrchestrator(
        c[Client],
        settings.temporal_task_queue,
        execution_timeout=timedelta(seconds=settings.workflow_execution_timeout_seconds),
    )

    def connected(client: Client) -> Process:
        container[Client] = client
        return container[ConsumerProcess]

    return ConnectingProcess(settings, connected)


def read_worker(
    settings: Settings | None = None, *, artifacts: ArtifactsApplication | None = None
) -> Process:
    """The read worker: keeps the read model (the artifact list) up to date."""
    container = build_container(settings, artifacts=artifacts)
    settings = container[Settings]
    container[ArtifactListView] = Singleton(lambda: artifact_catalog(settings))
    container[ConsumerProcess] = lambda c: ConsumerProcess(
        ReadWorker(
            c[ArtifactListView],
            c[ArtifactsApplication],
            stall_seconds=settings.subscription_stall_seconds,
        ),
        heartbeat=heartbeat_path(settings, ReadWorker.name),
        metrics_host=settings.metrics_host,
        metrics_port=settings.read_worker_metrics_port,
        closing=[c[ArtifactListView].close, c[ArtifactsApplication].close],
    )
    return container[ConsumerProcess]


def temporal_worker(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    blob_store: BlobStore | None = None,
    summarizer: Summarizer | None = None,
    activities_class: type[ArtifactActivities] | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Process:
    """The Temporal worker: runs ``ProcessArtifactWorkflow`` and its activities, and the
    reconciler (``ReconcileArtifactsWorkflow``) on its schedule.

    Without ``client`` it connects first, with the SDK's metrics endpoint.
    ``activities_class``: a subclass with faults injected (the fault suite);
    ``interceptors``: Temporal worker interceptors (the fault suite's shorter retries).
    """
    # Imported here: the activities load libmagic, Pillow and the parsers, and the worker
    # the workflow module; only this process needs them.
    from infrastructure.temporal.activities import ArtifactActivities
    from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator
    from infrastructure.temporal.reconciliation import ArtifactReconciler
    from infrastructure.temporal.retention import ArtifactRetention
    from infrastructure.temporal.worker import Reconciliation, Retention, TemporalWorker

    container = build_container(settings)
    settings = container[Settings]
    container[BlobStore] = blob_store or default_blob_store(settings)
    container[Summarizer] = summarizer or Singleton(lambda: default_summarizer(settings))
    activities = activities_class or ArtifactActivities
    # The activities that end a run complete an erasure that waited for it (the Eraser).
    container[ArtifactActivities] = lambda c: activities(
        c[ArtifactsApplication],
        c[BlobStore],
        c[Summarizer],
        processing_options(settings),
        eraser=c[Eraser],
    )

    def connected(client: Client) -> Process:
        container[Client] = client
        return container[TemporalWorker]

    container[TemporalWorker] = lambda c: TemporalWorker(
        c[Client],
        c[ArtifactActivities],
        task_queue=settings.temporal_task_queue,
        activity_threads=settings.activity_threads,
        shutdown_grace=timedelta(seconds=settings.shutdown_grace_seconds),
        reconciliation=c[Reconciliation],
        retention=c[Retention],
        interceptors=interceptors,
    )
    # The reconciler's candidates come from the read model; its decisions from the event
    # store (the process's one application) and Temporal.
    container[ArtifactCatalog] = Singleton(lambda: artifact_catalog(settings))
    container[WorkflowOrchestrator] = lambda c: TemporalWorkflowOrchestrator(
        c[Client], settings.temporal_task_queue
    )
    container[Reconciliation] = lambda c: Reconciliation(
        ArtifactReconciler(
            c[Client],
            c[ArtifactsApplication],
            c[ArtifactCatalog],
            c[WorkflowOrchestrator],
            redrive_after=timedelta(seconds=settings.reconcile_redrive_after_seconds),
        ),
        interval=timedelta(seconds=settings.reconcile_interval_seconds),
        batch_size=settings.reconcile_batch_size,
    )
    # Retention erases through the same path as DELETE; its candidates are the read
    # model's oldest artifacts.
    container[Retention] = lambda c: Retention(
        ArtifactRetention(c[ArtifactCatalog], c[Eraser]),
        days=settings.retention_days,
        interval=timedelta(seconds=settings.retention_sweep_seconds),
        batch_size=settings.retention_batch_size,
    )
    return ConnectingProcess(
        settings,
        connected,
        client=client,
        runtime=lambda: metrics_runtime(settings.temporal_worker_metrics_address),
    )


def orphan_sweep(settings: Settings | None = None) -> OrphanSweep:
    """``sweep_orphans``: the blobs no event references, on the configured stores."""
    container = build_container(settings)
    settings = container[Settings]
    return OrphanSweep(container[ArtifactsApplication], default_blob_store(settings))


def admin_dead_letters(settings: Settings, catalog: ArtifactCatalog) -> DeadLetters:
    """Both workers' dead letters, as the API's admin routes read them: the pipeline
    worker's beside its position, the read worker's in the read model (``catalog``)."""
    pipeline = tracking_recorder(settings, PipelineWorker.name)
    stores: dict[str, DeadLetterStore] = {PipelineWorker.name: pipeline}
    if isinstance(catalog, DeadLetterStore):
        stores[ReadWorker.name] = catalog
    return DeadLetters(stores, closes=[pipeline.close])


def default_blob_store(settings: Settings) -> BlobStore:
    """The configured blob store (BLOB_STORE), the same for every process."""
    if settings.blob_store == "s3":
        # Imported here: boto3 takes a second to import, and the local store needs none.
        from infrastructure.blobstore.s3 import s3_blob_store

        return s3_blob_store(settings)
    return LocalBlobStore(settings.blob_dir)


def default_summarizer(settings: Settings) -> Summarizer:
    """The configured summarizer: offline LexRank, or an OpenAI-compatible endpoint."""
    # Imported here: sumy (nltk) and openai take seconds to import, and only the Temporal
    # worker summarizes.
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
    """The content-processing limits the settings choose."""
    # Imported here, as the activities are: only the Temporal worker processes content.
    from infrastructure.processing.formats.archive import ArchiveLimits
    from infrastructure.processing.limits import DEFAULT_MODULES, Preload, ProcessLimits, WarmUp
    from infrastructure.processing.ocr import OcrOptions, check_languages
    from infrastructure.processing.options import ProcessingOptions
    from infrastructure.processing.pdf import PdfLimits

    # At the worker's start, naming the package to install, not at the first scan; and the
    # directory found here is the one the parser children use (they get no environment).
    tessdata = str(check_languages(settings.ocr_languages)) if settings.ocr != "off" else None
    ocr = OcrOptions(
        mode=settings.ocr,
        languages=settings.ocr_languages,
        page_timeout_seconds=settings.ocr_page_timeout_seconds,
        tessdata=tessdata,
    )
    # What the worker's fork server loads at start, before forking any parser child: the
    # PDF parser, and with OCR on, Tesseract's model for OCR_LANGUAGES and its orientation
    # detection (the sandboxed children could not read the data directory themselves).
    # Every parser family's ProcessLimits takes this one, so that one server (and one copy
    # of every module and model, shared by the children) serves them all; other parsers'
    # libraries it loads when it meets them (their FORK_SERVER_PRELOAD).
    warm_ups = (
        ()
        if tessdata is None
        else (
            WarmUp("infrastructure.processing.ocr:load_engine", (settings.ocr_languages, tessdata)),
            WarmUp("infrastructure.processing.ocr:load_orientation", (tessdata,)),
        )
    )
    preload = Preload(modules=DEFAULT_MODULES, warm_ups=warm_ups)
    return ProcessingOptions(
        allowed_types=settings.allowed_types,
        pdf=PdfLimits(
            max_pages=settings.pdf_max_pages,
            page_batch=settings.pdf_page_batch,
            process=ProcessLimits(
                cpu_seconds=settings.pdf_cpu_seconds,
                memory_bytes=settings.pdf_memory_mb * 1024 * 1024,
                wall_seconds=settings.pdf_timeout_seconds,
                preload=preload,
            ),
        ),
        text_max_bytes=settings.text_max_bytes,
        image_max_pixels=settings.image_max_pixels,
        image_max_frames=settings.image_max_frames,
        ocr=ocr,
        archive=ArchiveLimits(
            max_members=settings.office_max_members,
            max_uncompressed_bytes=settings.office_max_uncompressed_mb * 1024 * 1024,
            max_compression_ratio=settings.office_max_compression_ratio,
        ),
        spreadsheet_max_cells=settings.spreadsheet_max_cells,
        chunk_chars=settings.chunk_chars,
    )


def api_app(
    settings: Settings | None = None,
    *,
    artifacts: ArtifactsApplication | None = None,
    blob_store: BlobStore | None = None,
    catalog: ArtifactCatalog | None = None,
    temporal_probe: TemporalProbe | None = None,
    dead_letters: DeadLetters | None = None,
    eraser: Eraser | None = None,
) -> FastAPI:
    """The API process: the app uvicorn serves, on the real adapters unless given others.

    ``eraser`` (DELETE) defaults to the container's ``Eraser``, on this app's artifacts and
    blob store.

    Without a ``temporal_probe`` the app connects its Temporal client in its lifespan,
    lazily, so that it serves uploads even while Temporal is down (``/ready`` says so). On
    shutdown it closes what it built here.
    """
    # Imported here: the worker processes never load the web framework.
    from infrastructure.api.app import create_app
    from infrastructure.api.dependencies import ApiOptions, ApiServices
    from infrastructure.read_model import artifact_catalog
    from infrastructure.temporal.connection import connect

    built_artifacts = artifacts is None
    container = build_container(settings, artifacts=artifacts)
    settings = container[Settings]
    container[BlobStore] = blob_store or default_blob_store(settings)
    # What this function built, the app closes on shutdown; what it was given, the giver.
    closes: list[Callable[[], None]] = []
    artifacts = container[ArtifactsApplication]
    if built_artifacts:
        closes.append(artifacts.close)
    if eraser is None:
        eraser = container[Eraser]
    if catalog is None:
        view = artifact_catalog(settings)
        closes.append(view.close)
        catalog = view
    if dead_letters is None:
        dead_letters = admin_dead_letters(settings, catalog)
        closes.extend(dead_letters.closes)
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
        blob_store=container[BlobStore],
        catalog=catalog,
        temporal_probe=temporal_probe or probe_temporal,
        options=ApiOptions(
            max_upload_bytes=settings.max_upload_bytes,
            read_model_wait_seconds=settings.read_model_wait_seconds,
            temporal_ui_url=settings.temporal_ui_url,
            temporal_namespace=settings.temporal_namespace,
            api_keys=tuple(settings.api_tenant_keys),
            dedupe_by_sha256=settings.dedupe_by_sha256,
            admin_keys=tuple(settings.admin_tenant_keys),
            tenant_uploads_per_minute=settings.tenant_uploads_per_minute,
            tenant_storage_bytes=settings.tenant_storage_bytes,
        ),
        dead_letters=dead_letters,
        eraser=eraser,
    )
    return create_app(services, lifespan=lifespan)
