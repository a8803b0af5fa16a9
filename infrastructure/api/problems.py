"""Every error the API answers, as an RFC 9457 problem details document.

The body is ``application/problem+json``::

    {"type": "/problems/artifact_not_found", "title": "Artifact not found", "status": 404,
     "detail": "artifact … not found", "error": "artifact_not_found"}

``error`` is the machine-readable code clients read since before problem details (an
extension member; it never changes for a given problem). ``type`` is ``/problems/<error>``,
a stable URI reference naming that problem, for the errors this API defines; for a plain
HTTP error raised by the framework (an unknown route, a method the route does not have) it is
``about:blank`` and ``title`` is the status's phrase, as RFC 9457 section 4.2.1 asks.

``PROBLEMS`` is the one table from exception types to (status, error, title): routes raise
domain, application or upload errors and never build an error response themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match

from application.artifacts import ArtifactNotFound
from application.catalog import InvalidCursor
from domain.errors import (
    AlreadyErased,
    ArtifactError,
    CancellationNotAllowed,
    ReprocessingNotAllowed,
)
from infrastructure.api.dependencies import ErasureUnavailable
from infrastructure.api.quotas import RateLimited, StorageQuotaExceeded
from infrastructure.api.results import ResultUnavailable
from infrastructure.api.security import AdminOnly, ErasureInProgress, Unauthorized
from infrastructure.api.uploads import (
    InvalidIdempotencyKey,
    NotMultipart,
    UploadRejected,
    UploadTooLarge,
)
from infrastructure.eventstore.dead_letters import DeadLetterNotFound, UnknownConsumer

MEDIA_TYPE = "application/problem+json"
_Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class ReadModelUnavailable(Exception):  # noqa: N818 - a domain word
    """The API runs without a read model, so it cannot list artifacts."""


class NoExtractedText(Exception):  # noqa: N818 - a domain word
    """The artifact has no extracted text (not processed yet, failed, or reprocessing)."""


class Problem(BaseModel):
    """An RFC 9457 problem details document, with the API's error code as ``error``."""

    type: str
    title: str
    status: int
    detail: str
    error: str


@dataclass(frozen=True)
class Kind:
    status: int
    error: str
    title: str
    headers: tuple[tuple[str, str], ...] = ()


# Looked up along the exception's class hierarchy: a subclass without its own row is
# answered as its nearest ancestor in the table.
PROBLEMS: dict[type[Exception], Kind] = {
    ArtifactNotFound: Kind(404, "artifact_not_found", "Artifact not found"),
    # Only ever to the owner (or an admin): anyone else gets the 404 of an unknown id.
    AlreadyErased: Kind(410, "artifact_erased", "Artifact erased"),
    ErasureInProgress: Kind(410, "artifact_erasing", "Artifact being erased"),
    NoExtractedText: Kind(404, "no_text", "No extracted text"),
    ResultUnavailable: Kind(404, "result_unavailable", "Result not available"),
    ReprocessingNotAllowed: Kind(409, "reprocessing_not_allowed", "Reprocessing not allowed"),
    CancellationNotAllowed: Kind(409, "cancellation_not_allowed", "Cancellation not allowed"),
    ArtifactError: Kind(422, "invalid_artifact", "Invalid artifact"),
    InvalidCursor: Kind(400, "invalid_cursor", "Invalid cursor"),
    Unauthorized: Kind(401, "unauthorized", "Unauthorized", (("WWW-Authenticate", "Bearer"),)),
    UploadRejected: Kind(400, "bad_upload", "Bad upload"),
    InvalidIdempotencyKey: Kind(400, "invalid_idempotency_key", "Invalid idempotency key"),
    UploadTooLarge: Kind(413, "upload_too_large", "Upload too large"),
    NotMultipart: Kind(415, "unsupported_media_type", "Unsupported media type"),
    RequestValidationError: Kind(422, "invalid_request", "Invalid request"),
    ReadModelUnavailable: Kind(503, "read_model_unavailable", "Read model unavailable"),
    ErasureUnavailable: Kind(503, "erasure_unavailable", "Erasure unavailable"),
    # The per-tenant limits (quotas.py); a RateLimited carries its own Retry-After.
    RateLimited: Kind(429, "rate_limited", "Too many uploads"),
    StorageQuotaExceeded: Kind(403, "storage_quota_exceeded", "Storage quota exceeded"),
    # The admin routes (routes/dead_letters.py).
    AdminOnly: Kind(403, "admin_only", "Admin only"),
    DeadLetterNotFound: Kind(404, "dead_letter_not_found", "Dead letter not found"),
    UnknownConsumer: Kind(404, "unknown_consumer", "Unknown consumer"),
}
# What the HTTP status alone says; ``about:blank`` problems.
_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed"}


def problem_response(
    status: int, error: str, title: str, detail: str, *, type_: str | None = None, **headers: str
) -> JSONResponse:
    body = Problem(
        type=type_ or f"/problems/{error}", title=title, status=status, detail=detail, error=error
    )
    return JSONResponse(
        body.model_dump(), status_code=status, headers=headers or None, media_type=MEDIA_TYPE
    )


def kind_of(err: Exception) -> Kind:
    for cls in type(err).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    raise LookupError(f"no problem kind for {type(err).__name__}")


async def _known(_: Request, err: Exception) -> Response:
    kind = kind_of(err)
    # An error may name headers of its own answer (RateLimited: when to retry).
    headers = {**dict(kind.headers), **getattr(err, "headers", {})}
    return problem_response(kind.status, kind.error, kind.title, _detail(err), **headers)


def _detail(err: Exception) -> str:
    if isinstance(err, RequestValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in err.errors()
        )
    return str(err)


async def _http(request: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    status = err.status_code
    headers = dict(err.headers or {})
    if status == 405:
        # Starlette's Allow names only the first route matching the path; GET and POST
        # /artifacts are two routes, so list the methods of every one.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    phrase = HTTPStatus(status).phrase
    error = _HTTP_ERRORS.get(status) or re.sub(r"\W+", "_", phrase.lower())
    return problem_response(status, error, phrase, str(err.detail), type_="about:blank", **headers)


def _allowed_methods(request: Request) -> list[str]:
    return [
        method
        for method in _HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _unexpected(_: Request, err: Exception) -> Response:
    # The cause is in the log line Starlette writes, under the request id; not in the answer.
    return problem_response(
        500,
        "internal_error",
        "Internal Server Error",
        "the server failed to answer",
        type_="about:blank",
    )


def handlers() -> dict[int | type[Exception], _Handler]:
    """The exception handlers answering every error as a problem (``FastAPI(exception_handlers=)``).

    ``HTTPException`` covers what Starlette raises itself (unknown route, 405); ``Exception``
    is the last resort, so that even a 500 is a problem.
    """
    table: dict[int | type[Exception], _Handler]
    table = {exception_type: _known for exception_type in PROBLEMS}
    return {**table, HTTPException: _http, Exception: _unexpected}


class ProblemApp(FastAPI):
    """A FastAPI app whose OpenAPI document defines the ``Problem`` its errors refer to."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema()
        return self.openapi_schema or {}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses: each a ``Problem`` as problem+json."""
    content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        status: {"description": HTTPStatus(status).phrase, "content": content}
        for status in statuses
    }
