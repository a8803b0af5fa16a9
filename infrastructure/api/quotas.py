"""Per-tenant limits on uploads: how many a minute, and how many bytes stored in all.

Both are off unless set (``TENANT_UPLOADS_PER_MINUTE``, ``TENANT_STORAGE_BYTES``). The rate
is counted in this API process (a sliding window of the last minute's admitted uploads per
tenant): with several API processes behind a balancer each counts its own, so a tenant may
reach the limit once per process. Stored bytes are what the read model counts for the
tenant; concurrent uploads of one tenant are each checked against what is stored, not
against each other, so a burst may overshoot by what was in flight.

The upload route names ``UploadQuota`` as a dependency: the rate is checked then, before
anything else of the request is read; the route asks ``check_room`` before streaming the body
and ``check_fits`` once the file is stored.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactCatalog
from application.ports import BlobStore, StoredBlob
from infrastructure.api.dependencies import Artifacts, CallerDep, Catalog, Options

WINDOW_SECONDS = 60.0


class RateLimited(Exception):  # noqa: N818 - a domain word
    """The tenant has made its uploads for this minute; ``retry_after`` says when to retry."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # Read by the problem handler (problems.py): the answer's own headers.
        self.headers = {"Retry-After": str(retry_after)}


class StorageQuotaExceeded(Exception):  # noqa: N818 - a domain word
    """The tenant's stored bytes reach its quota, or this upload would cross it."""


class UploadRate:
    """Uploads admitted per tenant over the last minute, in this process; 0: no limit."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._admitted: dict[str, deque[float]] = {}
        # The dependency may run in the thread pool: admissions of one tenant never race.
        self._lock = threading.Lock()

    def admit(self, tenant: str) -> None:
        """Counts one upload of ``tenant``; ``RateLimited`` when the last minute is full.

        A refused upload is not counted, so a client that waits ``Retry-After`` gets in.
        """
        if self.per_minute <= 0:
            return
        with self._lock:
            now = self._clock()
            admitted = self._admitted.setdefault(tenant, deque())
            while admitted and admitted[0] <= now - WINDOW_SECONDS:
                admitted.popleft()
            if len(admitted) >= self.per_minute:
                retry_after = max(1, math.ceil(admitted[0] + WINDOW_SECONDS - now))
                raise RateLimited(
                    f"at most {self.per_minute} uploads a minute: retry in {retry_after} s",
                    retry_after=retry_after,
                )
            admitted.append(now)


class UploadQuota:
    """One upload's storage checks, for its tenant; both do nothing without a quota."""

    def __init__(
        self,
        tenant: str,
        *,
        limit: int,
        catalog: ArtifactCatalog | None,
        artifacts: ArtifactsApplication,
        wait_seconds: float,
    ) -> None:
        self.tenant = tenant
        self.limit = limit
        self._catalog = catalog
        self._artifacts = artifacts
        self._wait_seconds = wait_seconds

    async def check_room(self) -> None:
        """``StorageQuotaExceeded`` when the tenant's stored bytes already reach the quota."""
        if self.limit and await self._stored() >= self.limit:
            raise StorageQuotaExceeded(
                f"the tenant's uploads take {self.limit} bytes or more, its quota"
            )

    async def check_fits(self, blob: StoredBlob, blob_store: BlobStore) -> None:
        """``StorageQuotaExceeded`` when ``blob`` would take the tenant past its quota; the
        blob is deleted first, so a refused upload leaves nothing behind."""
        if not self.limit:
            return
        stored = await self._stored()
        if stored + blob.size > self.limit:
            await run_in_threadpool(blob_store.delete, blob.location)
            raise StorageQuotaExceeded(
                f"this upload ({blob.size} bytes) would take the tenant past its quota of "
                f"{self.limit} bytes ({stored} stored)"
            )

    async def _stored(self) -> int:
        catalog = self._catalog
        if catalog is None:
            # Refusing is safer than admitting unmeasured: without a read model there is
            # nothing to count with.
            raise StorageQuotaExceeded("the storage quota cannot be checked: no read model")
        # Read-your-writes, as the list does: this process's own uploads count at once.
        position = self._artifacts.last_written_position
        if position:
            await run_in_threadpool(catalog.wait_for, position, self._wait_seconds)
        return await run_in_threadpool(catalog.stored_bytes, self.tenant)


def _tenant(caller: CallerDep) -> str:
    return caller.tenant


async def _upload_quota(
    request: Request,
    tenant: Annotated[str, Depends(_tenant)],
    options: Options,
    catalog: Catalog,
    artifacts: Artifacts,
) -> UploadQuota:
    rate: UploadRate = request.app.state.upload_rate
    rate.admit(tenant)
    return UploadQuota(
        tenant,
        limit=options.tenant_storage_bytes,
        catalog=catalog,
        artifacts=artifacts,
        wait_seconds=options.read_model_wait_seconds,
    )


# The upload route's quota: naming it checks the rate, before the body is read.
Quota = Annotated[UploadQuota, Depends(_upload_quota)]
