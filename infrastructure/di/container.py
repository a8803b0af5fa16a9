"""The composition root: the one place that builds the service's parts.

Only entrypoints (the API, the pipeline worker, the Temporal worker) call it. Tests
build the parts they need directly, with fakes at the ports.
"""

from __future__ import annotations

from lagom import Container, Singleton
from temporalio.client import Client

from application.artifacts import ArtifactsApplication
from application.ports import BlobStore, WorkflowOrchestrator
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from infrastructure.temporal.orchestrator import TemporalWorkflowOrchestrator


def build_container(settings: Settings | None = None) -> Container:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    container = Container()
    container[Settings] = settings
    container[ArtifactsApplication] = Singleton(
        lambda: ArtifactsApplication(env=application_env(settings))
    )
    container[BlobStore] = Singleton(lambda: LocalBlobStore(settings.blob_dir))  # type: ignore[type-abstract]
    return container


def add_temporal(container: Container, client: Client) -> None:
    """Registers the process's one Temporal client and what is built on it."""
    settings = container[Settings]
    container[Client] = client
    container[WorkflowOrchestrator] = Singleton(  # type: ignore[type-abstract]
        lambda: TemporalWorkflowOrchestrator(client, settings.temporal_task_queue)
    )
