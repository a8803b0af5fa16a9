"""Who may call the API: bearer API keys, and the rule for running without any.

Keys come from ``API_KEYS``; admin keys (``ADMIN_API_KEYS``) admit everywhere too, and
they alone to the admin routes (``admin_of``). Every key is compared with
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

import structlog
from fastapi import Request

log = structlog.get_logger(__name__)

ANONYMOUS = "anonymous"


class Unauthorized(Exception):  # noqa: N818 - a domain word
    """The request carries no valid API key."""


class AdminOnly(Exception):  # noqa: N818 - a domain word
    """The request carries a valid API key, but not an admin key."""


class AnonymousAccessRefused(RuntimeError):  # noqa: N818 - a domain word
    """The API would serve anonymously on an address others can reach."""


def principal_of(request: Request, api_keys: Sequence[str]) -> str:
    """The caller of ``request``, admitted by one of ``api_keys``; ``Unauthorized`` otherwise.

    The principal is a digest of the caller's key (never the key itself), or ``anonymous``
    when no keys are configured, so that what a caller names (such as an idempotency key)
    is scoped to that caller.
    """
    if not api_keys:
        return ANONYMOUS
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer KEY'")
    candidate = presented.strip().encode()
    # Every key is compared, none skipped after a match: constant time over the set.
    matches = [hmac.compare_digest(candidate, key.encode()) for key in api_keys]
    if not any(matches):
        raise Unauthorized("the API key is not valid")
    return "key-" + hashlib.sha256(candidate).hexdigest()[:16]


def admin_of(request: Request, api_keys: Sequence[str], admin_keys: Sequence[str]) -> str:
    """The caller of an admin route: ``Unauthorized`` without a valid key, ``AdminOnly``
    with a key that is not an admin key; anonymous only when no keys at all are configured.
    """
    principal = principal_of(request, [*api_keys, *admin_keys])
    if principal == ANONYMOUS:
        return principal
    presented = request.headers.get("authorization", "").partition(" ")[2].strip().encode()
    matches = [hmac.compare_digest(presented, key.encode()) for key in admin_keys]
    if not any(matches):
        raise AdminOnly("this route needs an admin key (ADMIN_API_KEYS)")
    return principal


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
