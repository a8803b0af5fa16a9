"""Connecting to Temporal: once per process, retried while the server is away.

Where and how to connect is the SDK's environment configuration (``temporalio.envconfig``):
TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE as before, plus TLS, mTLS and an API key, from the
environment or a TOML profile. Settings resolves it once at start (``_resolve_temporal``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from temporalio.client import Client
from temporalio.envconfig import ClientConnectConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from infrastructure.config import Settings
from infrastructure.signals import Process

log = structlog.get_logger(__name__)


def metrics_runtime(address: str) -> Runtime | None:
    """A Temporal runtime whose SDK metrics Prometheus scrapes at http://``address``/metrics.

    The SDK's core (Rust) serves them: workflow and activity task latencies, slots in use,
    poll results, schedule-to-start times. None (the default runtime, no metrics) when
    ``address`` is empty or taken (a second worker on this host): the worker runs all the same.
    """
    if not address:
        return None
    try:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except ValueError as err:  # the SDK's report of a failed bind
        log.warning("metrics_unavailable", address=address, error=str(err))
        return None
    log.info("metrics_served", address=address)
    return runtime


def connect_options(settings: Settings) -> ClientConnectConfig:
    """The keyword arguments of ``Client.connect`` for the settings' Temporal profile.

    Reads the TLS files the profile names, so a missing one stops the process at its first
    connection, naming the file.
    """
    options = settings.temporal_client_profile.to_client_connect_config()
    options["target_host"] = settings.temporal_address
    options["namespace"] = settings.temporal_namespace
    return options


async def connect(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    """One connection attempt; ``lazy`` defers it to the first call (for the API)."""
    return await Client.connect(**connect_options(settings), lazy=lazy, runtime=runtime)


async def connect_with_retry(
    settings: Settings, stop: asyncio.Event, *, runtime: Runtime | None = None
) -> Client | None:
    """Connects, retrying with backoff until it works; None when ``stop`` is set first."""
    delay = 0.5
    while not stop.is_set():
        try:
            return await connect(settings, runtime=runtime)
        except RuntimeError as err:  # temporalio reports connect failures as RuntimeError
            log.warning(
                "temporal_unreachable",
                address=settings.temporal_address,
                error=str(err),
                retry_in_seconds=delay,
            )
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            delay = min(delay * 2, 10.0)
    return None


class ConnectingProcess:
    """Connects the process's one Temporal client, then runs what is built on it.

    The connection is retried while the server is away (``connect_with_retry``); a stop
    before it succeeds ends the process without building anything.
    """

    def __init__(
        self,
        settings: Settings,
        build: Callable[[Client], Process],
        *,
        client: Client | None = None,
        runtime: Callable[[], Runtime | None] = lambda: None,
    ) -> None:
        """``client``: one already connected (tests); ``runtime``: the SDK runtime to
        connect with, made only when a connection is."""
        self._settings = settings
        self._build = build
        self._client = client
        self._runtime = runtime

    async def run(self, stop: asyncio.Event) -> None:
        client = self._client or await connect_with_retry(
            self._settings, stop, runtime=self._runtime()
        )
        if client is not None:
            await self._build(client).run(stop)
