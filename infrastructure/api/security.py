"""Who may call the API: bearer API keys, and the rule for running without any.

Keys come from ``API_KEYS``, each naming its tenant (``alpha:KEY``); admin keys
(``ADMIN_API_KEYS``) reach every tenant's artifacts, and they alone the admin routes. A
request's ``Caller`` says which (``caller_of``). Every key is compared with
``hmac.compare_digest`` (all of them, whichever matches), so the time a check takes says
nothing about how close a guess was. Without keys the API is anonymous, which it only
allows on a loopback address unless ``ALLOW_ANONYMOUS=true`` says a proxy in front of it
does the authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import structlog
from fastapi import Request

from application.artifacts import ArtifactNotFound, ArtifactsApplication
from domain.artifact import DEFAULT_TENANT, Artifact
from domain.errors import AlreadyErased
from infrastructure.config import TenantKey

log = structlog.get_logger(__name__)

ANONYMOUS = "anonymous"


class Unauthorized(Exception):  # noqa: N818 - a domain word
    """The request carries no valid API key."""


class AdminOnly(Exception):  # noqa: N818 - a domain word
    """The request carries a valid API key, but not an admin key."""


class AnonymousAccessRefused(RuntimeError):  # noqa: N818 - a domain word
    """The API would serve anonymously on an address others can reach."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: the tenant whose artifacts it reaches, whether it is an admin (who
    reaches every tenant's, and the admin routes), and a principal naming it in records.

    The principal is a digest of the caller's key (never the key itself), or ``anonymous``
    when no keys are configured: anonymous development is the one tenant ``default``, with
    the admin routes open as they always were there.
    """

    tenant: str
    admin: bool
    principal: str


ANONYMOUS_CALLER = Caller(tenant=DEFAULT_TENANT, admin=True, principal=ANONYMOUS)


def caller_of(
    request: Request, api_keys: Sequence[TenantKey], admin_keys: Sequence[TenantKey]
) -> Caller:
    """The caller of ``request``, admitted by one of the keys; ``Unauthorized`` otherwise."""
    if not api_keys and not admin_keys:
        return ANONYMOUS_CALLER
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer KEY'")
    candidate = presented.strip().encode()
    entries = [(entry, False) for entry in api_keys] + [(entry, True) for entry in admin_keys]
    # Every key is compared, none skipped after a match: constant time over the set.
    matches = [hmac.compare_digest(candidate, entry.key.encode()) for entry, _ in entries]
    if not any(matches):
        raise Unauthorized("the API key is not valid")
    matched = [pair for pair, match in zip(entries, matches, strict=True) if match]
    # A key listed in both settings is an admin key; its tenant is the one its entries
    # name (``config.check_keys`` refuses a key given to two).
    tenant = matched[0][0].tenant
    return Caller(
        tenant=tenant,
        admin=any(admin for _, admin in matched),
        principal="key-" + hashlib.sha256(candidate).hexdigest()[:16],
    )


class ErasureInProgress(Exception):  # noqa: N818 - a domain word
    """The artifact is being erased (its run is stopping): nothing of it is served (410
    ``artifact_erasing``; ``artifact_erased`` once done)."""


def owned_artifact(
    artifacts: ArtifactsApplication, artifact_id: UUID, caller: Caller, *, erased: bool = False
) -> Artifact:
    """The artifact, if ``caller`` may reach it: its tenant's, or any for an admin.

    Another tenant's artifact raises the very ``ArtifactNotFound`` an unknown id does (same
    message, same 404, and the same work done: the aggregate is loaded either way), so no
    answer tells a caller that an id exists elsewhere. An erased one raises
    ``AlreadyErased`` (410) to whoever may reach it, and so does one being erased (its run
    is stopping; once asked for, nothing of it is served again), unless ``erased`` admits
    it (DELETE: a second delete is a no-op).
    """
    try:
        artifact = artifacts.get_artifact(artifact_id)
    except ArtifactNotFound:
        raise ArtifactNotFound(_not_found(artifact_id)) from None
    if artifact.tenant != caller.tenant and not caller.admin:
        raise ArtifactNotFound(_not_found(artifact_id))
    if artifact.erased and not erased:
        raise AlreadyErased(f"artifact {artifact_id} was erased")
    if artifact.erasure_pending and not erased:
        raise ErasureInProgress(
            f"artifact {artifact_id} is being erased: its run is stopping, then everything "
            "of it is deleted"
        )
    return artifact


def _not_found(artifact_id: UUID) -> str:
    return f"no artifact with id {artifact_id}"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve to anything


def check_anonymous_access(*, host: str, api_keys: Sequence[str], allow_anonymous: bool) -> None:
    """The start-up rule: anonymous only on loopback, or when explicitly allowed.

    Raises ``AnonymousAccessRefused`` for a non-loopback ``host`` without keys; logs the
    warning ``api_anonymous_access`` whenever the API will serve without keys.
    """
    if api_keys:
        return
    if not is_loopback(host) and not allow_anonymous:
        raise AnonymousAccessRefused(
            f"API_HOST={host} is not a loopback address and API_KEYS is empty: set API_KEYS "
            "(comma-separated keys), or ALLOW_ANONYMOUS=true if something in front of the "
            "API authenticates its callers"
        )
    log.warning(
        "api_anonymous_access",
        host=host,
        detail="API_KEYS is empty: every caller is admitted without a key",
    )
