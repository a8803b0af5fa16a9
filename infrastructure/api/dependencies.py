"""What the routes are served with, and the ``Annotated`` dependencies that hand it to them.

``create_app`` keeps the ``ApiServices`` it was assembled with in ``app.state`` once; every
route names what it needs (``artifacts: Artifacts``) and reads it from there, so a route is a
plain module-level function that a test reaches through the app built with fakes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactCatalog
from application.erasure import Eraser
from application.ports import BlobStore
from infrastructure.api.observability import ApiMetrics
from infrastructure.api.security import AdminOnly, Caller, caller_of
from infrastructure.config import TenantKey, check_keys, tenant_keys
from infrastructure.eventstore.dead_letters import DeadLetters

# Answers "is Temporal reachable?" by returning; raises when it is not.
TemporalProbe = Callable[[], Awaitable[None]]


class ErasureUnavailable(Exception):  # noqa: N818 - a domain word
    """The API runs without an ``Eraser``, so it cannot delete artifacts."""


@dataclass(frozen=True)
class ApiOptions:
    """The API's settings, as the routes use them (the process reads them from ``Settings``)."""

    max_upload_bytes: int
    read_model_wait_seconds: float = 1.0
    temporal_ui_url: str = "http://127.0.0.1:8233"
    temporal_namespace: str = "default"
    api_keys: tuple[str | TenantKey, ...] = ()
    """Each a ``TenantKey``, or an entry as API_KEYS writes one (``alpha:KEY``, bare ``KEY``)."""
    dedupe_by_sha256: bool = False
    admin_keys: tuple[str | TenantKey, ...] = ()
    """Reach every tenant's artifacts, and alone the admin routes; written the same way."""
    tenant_uploads_per_minute: int = 0
    """Per tenant and API process (quotas.py); 0: no limit."""
    tenant_storage_bytes: int = 0
    """The bytes a tenant's artifacts may take in all (quotas.py); 0: no limit."""

    def __post_init__(self) -> None:
        # Refused when the app is built, as Settings refuses them at start.
        check_keys(self.api_tenant_keys, self.admin_tenant_keys)

    @cached_property
    def api_tenant_keys(self) -> list[TenantKey]:
        return _keys(self.api_keys)

    @cached_property
    def admin_tenant_keys(self) -> list[TenantKey]:
        return _keys(self.admin_keys)


def _keys(entries: tuple[str | TenantKey, ...]) -> list[TenantKey]:
    return [
        key
        for entry in entries
        for key in ([entry] if isinstance(entry, TenantKey) else tenant_keys(entry))
    ]


@dataclass(frozen=True)
class ApiServices:
    """Everything the API serves from.

    Without a ``catalog`` the list answers 503 (the read model is not configured); without a
    ``temporal_probe``, ``/ready`` reports Temporal as not configured.
    """

    artifacts: ArtifactsApplication
    blob_store: BlobStore
    options: ApiOptions
    eraser: Eraser | None = None
    """Erases artifacts (DELETE); without one, DELETE answers 503."""
    catalog: ArtifactCatalog | None = None
    temporal_probe: TemporalProbe | None = None
    dead_letters: DeadLetters = field(default_factory=lambda: DeadLetters({}))
    """The workers' dead letters, by consumer (the admin routes)."""


def _services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(_services)]


def _artifacts(services: Services) -> ArtifactsApplication:
    return services.artifacts


def _blob_store(services: Services) -> BlobStore:
    return services.blob_store


def _options(services: Services) -> ApiOptions:
    return services.options


def _catalog(services: Services) -> ArtifactCatalog | None:
    return services.catalog


def _metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


def _caller(request: Request, options: Annotated[ApiOptions, Depends(_options)]) -> Caller:
    return caller_of(request, options.api_tenant_keys, options.admin_tenant_keys)


def _admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if not caller.admin:
        raise AdminOnly("this route needs an admin key (ADMIN_API_KEYS)")
    return caller


def _eraser(services: Services) -> Eraser:
    if services.eraser is None:
        raise ErasureUnavailable("erasure is not configured")
    return services.eraser


def _dead_letters(services: Services) -> DeadLetters:
    return services.dead_letters


Artifacts = Annotated[ArtifactsApplication, Depends(_artifacts)]
Blobs = Annotated[BlobStore, Depends(_blob_store)]
Options = Annotated[ApiOptions, Depends(_options)]
# None when the API runs without a read model: the route refuses (``ReadModelUnavailable``)
# only once the request is known to be valid, so a malformed query is still a 422.
Catalog = Annotated[ArtifactCatalog | None, Depends(_catalog)]
Metrics = Annotated[ApiMetrics, Depends(_metrics)]
# The caller, admitted by its API key (``Unauthorized`` otherwise). Routers behind the key
# list ``authenticated`` as a dependency; FastAPI runs it once per request, so a route that
# also names ``CallerDep`` gets the same answer.
CallerDep = Annotated[Caller, Depends(_caller)]
authenticated = Depends(_caller)
# The admin routes' router lists ``admin`` instead: 401 without a key, 403 with a non-admin.
admin = Depends(_admin)
DeadLetterBoard = Annotated[DeadLetters, Depends(_dead_letters)]
Erasers = Annotated[Eraser, Depends(_eraser)]
