"""Watching the API: a request id on every log line, Prometheus metrics per route.

``RequestObservation`` is a pure ASGI middleware (no ``BaseHTTPMiddleware``: that one runs
the route in another task, where the context variables bound here would not be seen, and
buffers streaming responses). It binds ``request_id`` with structlog's context variables for
the whole request, echoes it in ``X-Request-ID``, and counts and times the request under its
route *template* (``/artifacts/{artifact_id}``), so labels stay few whatever ids are asked.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
# Accepted from a client or proxy only when it cannot smuggle anything into a log line.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class ApiMetrics:
    """The API's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (until the response started), by route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.uploads = Counter(
            "artifact_uploads", "Uploads accepted (artifacts created)", registry=self.registry
        )
        self.upload_bytes = Counter(
            "artifact_upload_bytes", "Bytes of accepted uploads", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is sane, else a new one."""
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


class RequestObservation:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
                status["latency"] = time.perf_counter() - started
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                # Routes bind the artifact they work on; it must not outlive the request.
                structlog.contextvars.unbind_contextvars("artifact_id")
                # The router writes the matched route into the scope; unmatched paths share
                # one label so that scanning for URLs cannot grow the metrics without bound.
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope.get("method", "")
                self.metrics.requests.labels(method, route, str(status["code"])).inc()
                self.metrics.latency.labels(method, route).observe(
                    status.get("latency", time.perf_counter() - started)
                )
