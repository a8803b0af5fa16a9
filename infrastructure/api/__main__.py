"""Runs the API: ``python -m infrastructure.api`` (``make run``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from application.artifacts import ArtifactsApplication
from application.ports import BlobStore
from infrastructure.api.app import create_app
from infrastructure.api.security import AnonymousAccessRefused, check_anonymous_access
from infrastructure.config import Settings
from infrastructure.di.container import build_container
from infrastructure.logging import configure_logging
from infrastructure.read_model import artifact_catalog
from infrastructure.temporal.connection import connect


def build_app(settings: Settings) -> FastAPI:
    container = build_container(settings)
    client: Client | None = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal client
        # Lazy: the API serves uploads even while Temporal is down; /ready says so.
        client = await connect(settings, lazy=True)
        yield
        container[ArtifactsApplication].close()

    async def temporal_probe() -> None:
        assert client is not None
        await client.service_client.check_health()

    return create_app(
        artifacts=container[ArtifactsApplication],
        blob_store=container[BlobStore],  # type: ignore[type-abstract]
        max_upload_bytes=settings.max_upload_bytes,
        temporal_probe=temporal_probe,
        catalog=artifact_catalog(settings),
        read_model_wait_seconds=settings.read_model_wait_seconds,
        temporal_ui_url=settings.temporal_ui_url,
        temporal_namespace=settings.temporal_namespace,
        lifespan=lifespan,
        api_keys=settings.api_key_list,
        dedupe_by_sha256=settings.dedupe_by_sha256,
    )


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    try:
        check_anonymous_access(
            host=settings.api_host,
            api_keys=settings.api_key_list,
            allow_anonymous=settings.allow_anonymous,
        )
    except AnonymousAccessRefused as err:
        raise SystemExit(f"refusing to start: {err}") from None
    uvicorn.run(
        build_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # our logging configuration, not uvicorn's
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
