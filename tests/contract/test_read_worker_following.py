"""The read worker follows every event store: each artifact is listed as its latest event
left it, and a dropped connection, a failing store or a silent stall ends in a new
subscription from the view's recorded position, never in an exit or a lost event.

(Listing each artifact once and resuming after a restart: test_read_model_contract.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, MutableMapping
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking
from structlog.testing import capture_logs

from infrastructure.read_model import APPLICATION, ArtifactListView, artifact_catalog
from infrastructure.read_worker import ReadWorker
from tests.contract.backends import Backend, running
from tests.contract.test_resubscription import events_table_gone
from tests.support import wait_until


@pytest.fixture
def view(backend: Backend) -> Iterator[ArtifactListView]:
    catalog = artifact_catalog(backend.settings)
    if backend.start is not None and catalog.max_tracking_id(APPLICATION) is None:
        catalog.record_position(Tracking(APPLICATION, backend.start))  # a shared store's head
    yield catalog
    catalog.close()


def read_worker(
    backend: Backend, view: ArtifactListView, *, stall_seconds: float = 30.0, **env: str
) -> ReadWorker:
    """A read worker with its own connections; ``env`` overrides its application's."""
    return ReadWorker(view, backend.app(**env), stall_seconds=stall_seconds)


def start_processing(backend: Backend, artifact_id: UUID) -> None:
    artifact = backend.writer.get_artifact(artifact_id)
    artifact.record_started(run=artifact.run, workflow_id=f"artifact-{artifact_id}")
    backend.writer.save(artifact)


def statuses(view: ArtifactListView) -> dict[UUID, str]:
    items = view.list_artifacts(
        status=None, mime_type=None, limit=1000, cursor=None, tenant=None
    ).items
    return {item.id: item.status for item in items}


async def caught_up(view: ArtifactListView, backend: Backend) -> None:
    head = backend.writer.recorder.max_notification_id()
    assert head is not None
    assert await asyncio.to_thread(view.wait_for, head, 20), "the view never caught up"


def logged(logs: list[MutableMapping[str, Any]], event: str) -> bool:
    return any(entry["event"] == event for entry in logs)


async def test_each_artifact_is_listed_as_its_latest_event_left_it(
    backend: Backend, view: ArtifactListView
) -> None:
    async with running(read_worker(backend, view)):
        ids = backend.upload(3)
        start_processing(backend, ids[0])
        start_processing(backend, ids[2])
        await caught_up(view, backend)

    assert statuses(view) == {ids[0]: "processing", ids[1]: "uploaded", ids[2]: "processing"}


async def test_the_read_worker_resubscribes_after_its_connections_are_dropped(
    backend: Backend, view: ArtifactListView
) -> None:
    if backend.name == "sqlite":
        pytest.skip("an embedded SQLite file has no connection to drop; see the next test")
    with capture_logs() as logs:
        async with running(read_worker(backend, view)) as task:
            before = backend.upload(1)
            await caught_up(view, backend)

            backend.drop_connections()
            await wait_until(
                lambda: logged(logs, "subscription_resubscribed"), timeout=20, what="resubscribed"
            )
            after = backend.upload(2)
            await caught_up(view, backend)
            assert not task.done()

    assert set(statuses(view)) == set(before + after)


async def test_the_read_worker_resubscribes_after_its_store_failed_for_a_while(
    backend: Backend, view: ArtifactListView
) -> None:
    if backend.name != "sqlite":
        pytest.skip("the store is made to fail through SQLite's file; servers drop connections")
    with capture_logs() as logs:
        async with running(read_worker(backend, view)) as task:
            before = backend.upload(1)
            await caught_up(view, backend)

            with events_table_gone(backend):
                await wait_until(
                    lambda: logged(logs, "subscription_lost"), timeout=20, what="the failure"
                )
            after = backend.upload(2)
            await caught_up(view, backend)
            assert not task.done()

    assert logged(logs, "subscription_resubscribed")
    assert set(statuses(view)) == set(before + after)


async def test_a_stalled_read_worker_subscription_is_noticed_and_replaced(
    backend: Backend, view: ArtifactListView
) -> None:
    if backend.name != "sqlite":
        pytest.skip("a stall is made by slowing SQLite's polling; see the StallWatch tests")
    # After its first look, each subscription would not look again for an hour: a stall.
    worker = read_worker(backend, view, stall_seconds=0.4, SQLITE_POLL_INTERVAL="3600")
    with capture_logs() as logs:
        async with running(worker):
            before = backend.upload(1)
            await caught_up(view, backend)
            after = backend.upload(1)
            waited = time.monotonic()
            await caught_up(view, backend)
            waited = time.monotonic() - waited

    assert logged(logs, "subscription_stalled")
    assert waited < 10  # the resubscription found it, not the hourly poll
    assert set(statuses(view)) == set(before + after)
