"""The HTTP API, assembled: routers, middleware and the one error-handler table.

Where to look: ``routes/`` for what each path does, ``dependencies.py`` for what routes are
served with, ``problems.py`` for every error answer. The process builds its app through the
composition root (``infrastructure.di.container.api_app``); tests call ``create_app`` with
fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from infrastructure.api import problems
from infrastructure.api.dependencies import ApiOptions, ApiServices, TemporalProbe
from infrastructure.api.observability import ApiMetrics, RequestObservation
from infrastructure.api.pages import router as pages
from infrastructure.api.quotas import UploadRate
from infrastructure.api.routes import artifacts, dead_letters, downloads, health, structure

__all__ = ["ApiOptions", "ApiServices", "TemporalProbe", "create_app"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(services: ApiServices, *, lifespan: Lifespan | None = None) -> FastAPI:
    app = problems.ProblemApp(
        title="Artifact processing",
        summary="Upload files; each is processed once by a durable Temporal workflow.",
        version="0.1.0",
        lifespan=lifespan,
        exception_handlers=problems.handlers(),
    )
    # Read by the routes' dependencies (dependencies.py), never changed after this.
    app.state.services = services
    app.state.metrics = ApiMetrics()
    app.state.upload_rate = UploadRate(services.options.tenant_uploads_per_minute)
    app.add_middleware(RequestObservation, metrics=app.state.metrics)
    # The web page is open like /health: a browser loading a page sends no key; the page's
    # own API calls carry it.
    app.include_router(pages)
    app.include_router(health.public)
    app.include_router(health.router)
    app.include_router(artifacts.router)
    app.include_router(downloads.router)
    app.include_router(structure.router)
    app.include_router(dead_letters.router)
    return app
