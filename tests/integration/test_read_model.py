"""The read model on SQLite and on PostgreSQL: the artifact list that ``GET /artifacts`` reads.

Events are written by a real ``ArtifactsApplication``, projected by the read worker
(eventsourcing's runner, ``ArtifactListProjection`` and the real view) and read through the
``ArtifactCatalog`` port, as the API reads them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactCatalog, ArtifactRow, InvalidCursor
from domain.artifact import Artifact, ArtifactCreated
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from infrastructure.healthcheck import check_heartbeat, heartbeat_path
from infrastructure.read_model import (
    APPLICATION,
    ArtifactListProjection,
    ArtifactListView,
    artifact_catalog,
)
from infrastructure.read_model.postgres import PostgresArtifactList
from infrastructure.read_model.sqlite import SQLiteArtifactList
from infrastructure.read_model.view import encode_cursor, to_micros
from infrastructure.read_worker import ReadWorker
from tests.support import Process, running, service_env

# -- the parts: a writer, the view, the read worker ------------------------------------


@pytest.fixture
def writer(settings: Settings) -> Iterator[ArtifactsApplication]:
    """The application the API and the Temporal activities write through."""
    app = ArtifactsApplication(env=application_env(settings))
    yield app
    app.close()


@pytest.fixture
def view(settings: Settings) -> Iterator[ArtifactListView]:
    catalog = artifact_catalog(settings)
    yield catalog
    catalog.close()


@contextlib.asynccontextmanager
async def projecting(settings: Settings, view: ArtifactListView) -> AsyncIterator[ReadWorker]:
    """The read worker, running until the block ends, then stopped as SIGTERM stops it."""
    watched = ArtifactsApplication(env=application_env(settings))
    worker = ReadWorker(view, watched)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        watched.close()


def position_of(writer: ArtifactsApplication) -> int:
    """The position of the last event written."""
    head = writer.recorder.max_notification_id()
    assert head is not None
    return head


async def caught_up(view: ArtifactListView, writer: ArtifactsApplication) -> None:
    assert await asyncio.to_thread(view.wait_for, position_of(writer), 20), "not caught up"


# -- what happens to artifacts, through the aggregate's own commands ------------------

Command = Callable[[Artifact], object]


def upload(
    writer: ArtifactsApplication,
    filename: str = "notes.txt",
    size: int = 10,
    tenant: str = "default",
) -> UUID:
    return writer.create_artifact_once(
        tenant=tenant,
        idempotency_key=None,
        filename=filename,
        content_type="application/octet-stream",
        size=size,
        sha256="0" * 64,
        storage_location=f"blobs/{uuid.uuid4().hex}",
    ).id


def then(writer: ArtifactsApplication, artifact_id: UUID, *commands: Command) -> int:
    """Applies the commands to the artifact and saves it; returns the last event's position."""
    artifact = writer.get_artifact(artifact_id)
    for command in commands:
        command(artifact)
    recordings = writer.save(artifact)
    return recordings[-1].notification.id


def started(artifact: Artifact) -> None:
    artifact.record_started(run=artifact.run, workflow_id=f"artifact-{artifact.id}")


def processed(mime_type: str, page_count: int | None = None) -> Command:
    return lambda artifact: artifact.record_processed(
        run=artifact.run,
        mime_type=mime_type,
        kind="pdf" if page_count else "text",
        page_count=page_count,
        char_count=100,
        text_locations=[f"texts/{artifact.id}"],
        details={},
    )


def failed(reason: str) -> Command:
    return lambda artifact: artifact.record_failed(run=artifact.run, reason=reason, message="no")


def summarised(artifact: Artifact) -> None:
    artifact.add_summary_candidate(
        run=artifact.run, text="In short.", source="extractive", model="lsa", pipeline_version="1"
    )


def reprocessing(artifact: Artifact) -> None:
    artifact.request_reprocessing()


def everything(catalog: ArtifactCatalog, **filters: str) -> list[ArtifactRow]:
    return catalog.list_artifacts(limit=1000, cursor=None, **_filters(filters)).items


def walk(catalog: ArtifactCatalog, limit: int, **filters: str) -> list[list[ArtifactRow]]:
    """Every page, following the cursors from the first page to the last."""
    pages, cursor = [], None
    while True:
        page = catalog.list_artifacts(limit=limit, cursor=cursor, **_filters(filters))
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _filters(given: dict[str, str]) -> dict[str, str | None]:
    return {
        "status": given.get("status"),
        "mime_type": given.get("mime_type"),
        "tenant": given.get("tenant"),
    }


# -- the list -------------------------------------------------------------------------


async def test_the_list_shows_each_artifact_newest_first_as_processing_left_it(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings
) -> None:
    report = upload(writer, "report.pdf", size=2048)
    then(writer, report, started, processed("application/pdf", page_count=3), summarised)
    broken = upload(writer, "broken.pdf")
    then(writer, broken, started, failed("corrupt"))
    busy = upload(writer, "busy.txt")
    then(writer, busy, started)
    fresh = upload(writer, "fresh.txt")

    async with projecting(settings, view):
        await caught_up(view, writer)
    items = everything(view)

    assert [item.id for item in items] == [fresh, busy, broken, report]
    assert [item.status for item in items] == ["uploaded", "processing", "failed", "processed"]
    by_id = {item.id: item for item in items}
    assert by_id[report] == ArtifactRow(
        id=report,
        filename="report.pdf",
        status="processed",
        mime_type="application/pdf",
        size=2048,
        page_count=3,
        failure_reason=None,
        has_summary=True,
        created_at=by_id[report].created_at,
        updated_at=by_id[report].updated_at,
    )
    assert by_id[report].updated_at > by_id[report].created_at
    assert by_id[broken].failure_reason == "corrupt"
    assert by_id[broken].mime_type is None
    assert by_id[fresh].updated_at == by_id[fresh].created_at
    assert by_id[fresh].created_at.tzinfo is not None
    assert by_id[fresh].created_at == writer.get_artifact(fresh).created_on


async def test_the_list_filters_by_status_and_by_mime_type(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings
) -> None:
    pdf = upload(writer, "a.pdf")
    then(writer, pdf, started, processed("application/pdf", page_count=1))
    text = upload(writer, "b.txt")
    then(writer, text, started, processed("text/plain"))
    bad = upload(writer, "c.bin")
    then(writer, bad, started, failed("unsupported_type"))
    new = upload(writer, "d.txt")

    async with projecting(settings, view):
        await caught_up(view, writer)

    def ids(**filters: str) -> list[UUID]:
        return [item.id for item in everything(view, **filters)]

    assert ids(status="processed") == [text, pdf]
    assert ids(status="failed") == [bad]
    assert ids(status="uploaded") == [new]
    assert ids(mime_type="application/pdf") == [pdf]
    assert ids(status="processed", mime_type="text/plain") == [text]
    assert ids(status="failed", mime_type="text/plain") == []
    assert ids(status="no-such-status") == []


async def test_following_the_cursors_visits_each_artifact_once_while_new_ones_arrive(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings
) -> None:
    before = [upload(writer, f"{i}.txt") for i in range(7)]
    async with projecting(settings, view):
        await caught_up(view, writer)
        first = view.list_artifacts(status=None, mime_type=None, limit=3, cursor=None, tenant=None)
        later = [upload(writer, "later.txt") for _ in range(2)]
        await caught_up(view, writer)
        seen = list(first.items)
        cursor = first.next_cursor
        while cursor is not None:
            page = view.list_artifacts(
                status=None, mime_type=None, limit=3, cursor=cursor, tenant=None
            )
            seen += page.items
            cursor = page.next_cursor

    assert [item.id for item in seen] == list(reversed(before))
    assert [item.id for item in everything(view)] == list(reversed(before + later))


@pytest.mark.parametrize("limit", [1, 2, 3, 8])
async def test_pages_split_artifacts_created_in_the_same_microsecond_without_loss(
    view: ArtifactListView, limit: int
) -> None:
    # Timestamps tie when clocks are coarse or uploads land together; the id breaks the tie.
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    times = [moment] * 5 + [moment - timedelta(seconds=1), moment + timedelta(seconds=1)]
    projection = ArtifactListProjection(view)
    for position, created_at in enumerate(times, start=1):
        artifact = Artifact.create(
            filename="same.txt",
            content_type="text/plain",
            size=1,
            sha256="0" * 64,
            storage_location="blobs/x",
        )
        [created] = artifact.collect_events()
        assert isinstance(created, ArtifactCreated)
        event = dataclasses.replace(created, timestamp=created_at)
        projection.process_event(event, Tracking(APPLICATION, position))

    pages = walk(view, limit=limit)
    seen = [item for page in pages for item in page]

    assert all(len(page) <= limit for page in pages)
    assert len(seen) == len(times) == len({item.id for item in seen})
    assert seen == sorted(seen, key=lambda item: (item.created_at, item.id), reverse=True)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        base64.urlsafe_b64encode(b"hello").decode(),
        base64.urlsafe_b64encode(b"123.not-a-uuid").decode(),
        base64.urlsafe_b64encode(f"soon.{uuid.uuid4()}".encode()).decode(),
        base64.urlsafe_b64encode(f"99999999999999999999.{uuid.uuid4()}".encode()).decode(),
        encode_cursor(datetime(2025, 1, 1, tzinfo=UTC), uuid.uuid4()) + "==",
        base64.urlsafe_b64encode(f"1.{uuid.uuid4().hex}".encode()).decode(),
        "A" * 10_000,
    ],
)
def test_a_cursor_the_catalog_did_not_hand_out_is_refused(
    view: ArtifactListView, cursor: str
) -> None:
    with pytest.raises(InvalidCursor):
        view.list_artifacts(status=None, mime_type=None, limit=10, cursor=cursor, tenant=None)


def test_a_page_holds_at_least_one_artifact(view: ArtifactListView) -> None:
    with pytest.raises(ValueError, match="limit"):
        view.list_artifacts(status=None, mime_type=None, limit=0, cursor=None, tenant=None)


# -- exactly once, in order -----------------------------------------------------------


def test_an_event_processed_again_changes_nothing(
    writer: ArtifactsApplication, view: ArtifactListView
) -> None:
    artifact_id = upload(writer, "twice.pdf")
    then(writer, artifact_id, started, processed("application/pdf", page_count=2))
    projection = ArtifactListProjection(view)
    notifications = writer.recorder.select_notifications(start=None, limit=10)
    events = [
        (writer.mapper.to_domain_event(n), Tracking(APPLICATION, n.id)) for n in notifications
    ]
    for event, tracking in events:
        projection.process_event(event, tracking)
    before = everything(view)

    # Delivered again, as to a second read worker or after a retried commit.
    for event, tracking in events:
        projection.process_event(event, tracking)
    # Delivered again under a later position, as if the tracking record had been lost:
    # the row's version keeps the older events from undoing the newer ones.
    head = notifications[-1].id
    for offset, (event, _) in enumerate(events, start=1):
        projection.process_event(event, Tracking(APPLICATION, head + offset))

    assert everything(view) == before
    assert before[0].status == "processed"
    assert view.max_tracking_id(APPLICATION) == head + len(events)


async def test_reprocessing_puts_the_artifact_back_to_uploaded(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings
) -> None:
    done = upload(writer, "done.pdf")
    then(writer, done, started, processed("application/pdf", page_count=4), summarised)
    bad = upload(writer, "bad.pdf")
    then(writer, bad, started, failed("encrypted"))

    async with projecting(settings, view):
        await caught_up(view, writer)
        assert [item.status for item in everything(view)] == ["failed", "processed"]
        then(writer, done, reprocessing)
        then(writer, bad, reprocessing)
        await caught_up(view, writer)
        reset = everything(view)
        then(writer, done, started)
        await caught_up(view, writer)
        restarted = everything(view)

    for item in reset:
        assert item.status == "uploaded"
        assert (item.mime_type, item.page_count, item.failure_reason) == (None, None, None)
        assert not item.has_summary
    assert [item.status for item in restarted] == ["uploaded", "processing"]


# -- read-your-writes -----------------------------------------------------------------


async def test_wait_for_is_true_once_the_view_caught_up_and_false_when_time_runs_out(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings
) -> None:
    position = then(writer, upload(writer), started)

    waited = time.monotonic()
    assert not await asyncio.to_thread(view.wait_for, position, 0.3)
    assert 0.3 <= time.monotonic() - waited < 2

    async with projecting(settings, view):
        assert await asyncio.to_thread(view.wait_for, position, 20)
        # The write is visible to the read that follows the wait.
        assert [item.status for item in everything(view)] == ["processing"]
        assert not await asyncio.to_thread(view.wait_for, position + 1, 0.1)


# -- the process ----------------------------------------------------------------------


async def test_the_read_worker_process_projects_events_and_exits_0_on_sigterm(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings, tmp_path: Path
) -> None:
    before = upload(writer, "before.txt")
    env = service_env(settings)
    process = Process.python_module(
        "infrastructure.read_worker", env=env, log_path=tmp_path / "rw.log"
    )
    with running(process):
        # Generous: a Python process's start is slow on a busy machine; the stop is not.
        assert await asyncio.to_thread(view.wait_for, position_of(writer), 60), process.output()
        position = then(writer, upload(writer, "during.txt"), started)
        assert await asyncio.to_thread(view.wait_for, position, 20), process.output()
        # What `python -m infrastructure.healthcheck read_worker` checks.
        assert check_heartbeat(heartbeat_path(settings, "read_worker")) is None

        process.send(signal.SIGTERM)
        sent = time.monotonic()
        assert await process.wait_for_exit(timeout=5) == 0, process.output()
        print(f"\nread worker exited {time.monotonic() - sent:.2f} s after SIGTERM")
        assert '"event": "read_worker_stopped"' in process.output()

    assert [item.filename for item in everything(view)] == ["during.txt", "before.txt"]
    assert everything(view)[1].id == before


# -- a large list: filters and pages stay exact (speed is measured by `make bench`) -------


def test_paging_through_20000_artifacts_by_status_and_type_visits_each_match_once(
    view: ArtifactListView,
) -> None:
    load_artifacts(view, 20_000)
    # load_artifacts: status i % 4, PDF when i % 3 == 0, so "failed" PDFs are i % 12 == 3.
    seen = []
    cursor: str | None = None
    while True:
        page = view.list_artifacts(
            status="failed", mime_type="application/pdf", limit=97, cursor=cursor, tenant=None
        )
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert len(seen) == len({item.id for item in seen}) == len(range(3, 20_000, 12))
    assert {(item.status, item.mime_type) for item in seen} == {("failed", "application/pdf")}
    assert [item.created_at for item in seen] == sorted(
        (item.created_at for item in seen), reverse=True
    )


def load_artifacts(view: ArtifactListView, count: int) -> None:
    """Fills the view's table directly: projecting 20,000 events one by one takes longer
    than a test should, and the subject here is the query."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    statuses = ["uploaded", "processing", "processed", "failed"]
    artifacts = [
        (
            uuid.uuid4(),
            statuses[i % 4],
            "application/pdf" if i % 3 == 0 else "text/plain",
            # Every tenth artifact shares its predecessor's moment.
            start + timedelta(seconds=i - (i % 10 == 9)),
        )
        for i in range(count)
    ]
    insert = (
        "INSERT INTO {table} (id, filename, status, mime_type, size, page_count, "
        "failure_reason, has_summary, created_at, updated_at, version) "
        "VALUES ({id}, 'f', {status}, {mime_type}, 1, 1, NULL, {no}, {at}, {at}, 1)"
    )
    if isinstance(view, PostgresArtifactList):
        names = {name: f"%({name})s" for name in ("id", "status", "mime_type", "at")}
        table = f'"{view.datastore.schema}".artifact_list'
        with view.datastore.transaction(commit=True) as curs:
            rows = [
                {"id": id_, "status": status, "mime_type": mime_type, "at": at}
                for id_, status, mime_type, at in artifacts
            ]
            curs.executemany(insert.format(table=table, no="false", **names), rows)
            # As autovacuum does once a table has grown; the planner needs the statistics.
            curs.execute(f"ANALYZE {table}")
    else:
        assert isinstance(view, SQLiteArtifactList)
        names = {name: f":{name}" for name in ("id", "status", "mime_type", "at")}
        sqlite_rows = [
            {"id": str(id_), "status": status, "mime_type": mime_type, "at": to_micros(at)}
            for id_, status, mime_type, at in artifacts
        ]
        with view.datastore.transaction(commit=True) as c:
            c.executemany(insert.format(table="artifact_list", no="0", **names), sqlite_rows)


# -- tenants and erasure ---------------------------------------------------------------


def erased(artifact: Artifact) -> None:
    artifact.record_erased(by="tenant:alpha", reason="request")


async def test_the_list_of_a_tenant_shows_its_artifacts_only_and_its_cursors_stay_within_it(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings
) -> None:
    of_alpha = [upload(writer, f"a{i}.txt", tenant="alpha") for i in range(5)]
    of_beta = [upload(writer, f"b{i}.txt", tenant="beta") for i in range(3)]

    async with projecting(settings, view):
        await caught_up(view, writer)

    pages = walk(view, 2, tenant="alpha")
    assert [item.id for page in pages for item in page] == of_alpha[::-1]
    assert {item.tenant for page in pages for item in page} == {"alpha"}
    assert [item.id for item in everything(view, tenant="beta")] == of_beta[::-1]
    assert len(everything(view)) == 8
    assert everything(view, tenant="gamma") == []


async def test_an_erased_artifact_leaves_the_list_and_its_tenants_stored_bytes(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings
) -> None:
    kept = upload(writer, "kept.txt", size=100, tenant="alpha")
    gone = upload(writer, "gone.txt", size=30, tenant="alpha")
    upload(writer, "other.txt", size=7, tenant="beta")
    then(writer, gone, started, failed("corrupt"), erased)

    async with projecting(settings, view):
        await caught_up(view, writer)

    assert [item.id for item in everything(view, tenant="alpha")] == [kept]
    assert view.stored_bytes("alpha") == 100
    assert view.stored_bytes("beta") == 7
    assert view.stored_bytes("nobody") == 0


async def test_created_before_names_the_oldest_artifacts_first_across_tenants(
    writer: ArtifactsApplication, view: ArtifactListView, settings: Settings
) -> None:
    first = upload(writer, tenant="alpha")
    second = upload(writer, tenant="beta")
    cutoff = datetime.now(UTC)
    upload(writer, tenant="alpha")

    async with projecting(settings, view):
        await caught_up(view, writer)

    assert view.created_before(cutoff, 10) == [first, second]
    assert view.created_before(cutoff, 1) == [first]
    assert view.created_before(cutoff - timedelta(days=1), 10) == []


async def test_an_erased_filename_is_in_no_byte_of_the_sqlite_read_model(
    writer: ArtifactsApplication, settings: Settings, tmp_path: Path
) -> None:
    if settings.tracking_store != "sqlite":
        pytest.skip("the files of SQLite")
    marker = f"marker-{uuid.uuid4().hex}"
    view = artifact_catalog(settings)
    try:
        artifact_id = upload(writer, f"{marker}.txt", tenant="alpha")
        async with projecting(settings, view):
            await caught_up(view, writer)
            assert any(marker.encode() in path.read_bytes() for path in read_model_files(settings))
            then(writer, artifact_id, started, failed("corrupt"), erased)
            await caught_up(view, writer)
        assert everything(view) == []
    finally:
        view.close()

    assert not [path for path in read_model_files(settings) if marker.encode() in path.read_bytes()]


def read_model_files(settings: Settings) -> list[Path]:
    return [path for path in settings.data_dir.glob("read_model.sqlite3*") if path.is_file()]


def test_a_list_made_before_tenants_gets_the_column_with_the_default_tenant(
    settings: Settings,
) -> None:
    if settings.tracking_store != "sqlite":
        pytest.skip("PostgreSQL adds it with ADD COLUMN IF NOT EXISTS")
    import sqlite3

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "read_model.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.execute(
            "CREATE TABLE artifact_list (id TEXT PRIMARY KEY, filename TEXT NOT NULL, "
            "status TEXT NOT NULL, mime_type TEXT, size INTEGER NOT NULL, page_count INTEGER, "
            "failure_reason TEXT, has_summary INTEGER NOT NULL, created_at INTEGER NOT NULL, "
            "updated_at INTEGER NOT NULL, version INTEGER NOT NULL)"
        )
        old.execute(
            "INSERT INTO artifact_list VALUES (?, 'old.txt', 'processed', NULL, 5, NULL, NULL, "
            "0, 1, 1, 1)",
            (str(uuid.uuid4()),),
        )
        old.commit()

    view = artifact_catalog(settings)
    try:
        (row,) = everything(view)
        assert row.tenant == "default"
        assert view.stored_bytes("default") == 5
    finally:
        view.close()
