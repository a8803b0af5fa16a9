"""The read model on every event store: the read worker lists each artifact once, keeps
its position in TRACKING_STORE (the only place EventStoreDB allows), and resumes from it."""

from __future__ import annotations

from eventsourcing.persistence import Tracking

from infrastructure.read_model import APPLICATION, ArtifactListView, artifact_catalog
from infrastructure.read_worker import ReadWorker
from tests.contract.backends import Backend, running
from tests.support import wait_until


def read_worker(backend: Backend) -> tuple[ReadWorker, ArtifactListView]:
    """A read worker with its own view and connections, as its own process would have."""
    view = artifact_catalog(backend.settings)
    if backend.start is not None and view.max_tracking_id(APPLICATION) is None:
        view.record_position(Tracking(APPLICATION, backend.start))  # a shared store's head
    worker = ReadWorker(view, backend.app())
    return worker, view


def listed(view: ArtifactListView) -> list[str]:
    page = view.list_artifacts(status=None, mime_type=None, limit=1000, cursor=None, tenant=None)
    return sorted(str(item.id) for item in page.items)


async def test_the_read_worker_lists_every_artifact_once_and_resumes(backend: Backend) -> None:
    first = backend.upload(3)
    worker, view = read_worker(backend)
    try:
        async with running(worker):
            last = backend.writer.recorder.max_notification_id()
            await wait_until(lambda: worker.position == last, timeout=20, what="the view caught up")
        assert listed(view) == sorted(map(str, first))
    finally:
        view.close()

    later = backend.upload(2)  # while no read worker runs
    worker, view = read_worker(backend)
    try:
        async with running(worker):
            last = backend.writer.recorder.max_notification_id()
            await wait_until(lambda: worker.position == last, timeout=20, what="resumed")
        assert listed(view) == sorted(map(str, first + later))
    finally:
        view.close()
