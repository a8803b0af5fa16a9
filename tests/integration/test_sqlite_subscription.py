"""The SQLite event store can be followed like PostgreSQL: ``ApplicationSubscription`` on it.

SQLite has no push channel, so ``infrastructure.eventstore.sqlite`` polls. These tests
use real SQLite files and separate application instances, as separate processes would.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import get_topic

from application.artifacts import ArtifactsApplication
from domain.artifact import ArtifactCreated
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from infrastructure.eventstore.sqlite import PollingSubscription

CREATED = get_topic(ArtifactCreated)


def sqlite_settings(tmp_path: Path, poll_interval: float = 0.05) -> Settings:
    return Settings(data_dir=tmp_path, event_store="sqlite", sqlite_poll_interval=poll_interval)


@pytest.fixture
def open_app(tmp_path: Path) -> Iterator[Any]:
    """Opens applications on one SQLite file (each like another process), closes them all."""
    opened: list[ArtifactsApplication] = []

    def open_app(poll_interval: float = 0.05) -> ArtifactsApplication:
        app = ArtifactsApplication(env=application_env(sqlite_settings(tmp_path, poll_interval)))
        opened.append(app)
        return app

    yield open_app
    for app in opened:
        app.close()


class Note(Aggregate):
    """Another aggregate saved by the same application: events of another topic."""

    class Written(Aggregate.Created):
        text: str

    @event(Written)
    def __init__(self, text: str) -> None:
        self.text = text


def create(app: ArtifactsApplication, n: int = 1) -> list[UUID]:
    return [
        app.create_artifact_once(
            idempotency_key=None,
            filename=f"file-{i}.txt",
            content_type="text/plain",
            size=1,
            sha256="0" * 64,
            storage_location=f"00/{i:032x}",
        ).id
        for i in range(n)
    ]


class Reader:
    """Iterates a subscription in a thread of its own, as the pipeline worker does."""

    def __init__(self, subscription: ApplicationSubscription[UUID]) -> None:
        self.subscription = subscription
        self.received: queue.Queue[tuple[UUID, int]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for domain_event, tracking in self.subscription:
            self.received.put((domain_event.originator_id, tracking.notification_id))

    def take(self, n: int, timeout: float = 5.0) -> list[tuple[UUID, int]]:
        return [self.received.get(timeout=timeout) for _ in range(n)]

    def stop(self) -> None:
        self.subscription.stop()
        self.thread.join(timeout=5)


def test_yields_the_events_recorded_after_the_given_position(open_app: Any) -> None:
    app = open_app()
    first, *_ = create(app, 4)
    position = app.recorder.max_notification_id()
    later = create(app, 2)
    assert position is not None

    subscription = ApplicationSubscription(app, gt=position)
    reader = Reader(subscription)
    try:
        received = reader.take(2)
    finally:
        reader.stop()

    assert [artifact_id for artifact_id, _ in received] == later
    assert [notification_id for _, notification_id in received] == [position + 1, position + 2]
    assert first not in dict(received)


def test_yields_only_events_of_the_given_topics_with_their_own_positions(open_app: Any) -> None:
    app = open_app()
    [a] = create(app)
    app.save(Note(text="another topic"))
    [b] = create(app)

    reader = Reader(ApplicationSubscription(app, topics=[CREATED]))
    try:
        received = reader.take(2)
        with pytest.raises(queue.Empty):
            reader.received.get(timeout=0.3)
    finally:
        reader.stop()

    # The note took notification id 2; the filter skips it.
    assert received == [(a, 1), (b, 3)]


def test_yields_the_events_of_whichever_topic_it_is_given(open_app: Any) -> None:
    app = open_app()
    create(app)
    first, second = Note(text="one"), Note(text="two")
    app.save(first)
    create(app)
    app.save(second)

    reader = Reader(ApplicationSubscription(app, topics=[get_topic(Note.Written)]))
    try:
        received = reader.take(2)
    finally:
        reader.stop()

    assert received == [(first.id, 2), (second.id, 4)]


def test_blocks_then_yields_an_event_another_process_records_later(open_app: Any) -> None:
    follower, uploader = open_app(), open_app()
    reader = Reader(ApplicationSubscription(follower, topics=[CREATED]))
    try:
        with pytest.raises(queue.Empty):
            reader.received.get(timeout=0.3)  # nothing recorded yet: it waits
        assert reader.thread.is_alive()

        [artifact_id] = create(uploader)

        assert reader.take(1) == [(artifact_id, 1)]
    finally:
        reader.stop()


def test_stop_ends_a_waiting_iteration_without_waiting_out_the_poll_interval(
    open_app: Any,
) -> None:
    app = open_app(poll_interval=10)
    reader = Reader(ApplicationSubscription(app))
    with pytest.raises(queue.Empty):
        reader.received.get(timeout=0.2)

    started = time.monotonic()
    reader.stop()

    assert not reader.thread.is_alive()
    assert time.monotonic() - started < 1.0


def test_stop_ends_an_iteration_that_still_has_buffered_events(open_app: Any) -> None:
    app = open_app()
    create(app, 5)
    subscription = PollingSubscription(app.recorder, gt=0)

    first = next(subscription)
    subscription.stop()

    assert first.id == 1
    assert list(subscription) == []


def test_reads_every_event_in_order_across_batches(open_app: Any) -> None:
    app = open_app()
    ids = create(app, 7)
    subscription = PollingSubscription(app.recorder, batch_size=2, poll_interval=0.05)

    received = [next(subscription) for _ in range(7)]
    subscription.stop()

    assert [n.originator_id for n in received] == ids
    assert [n.id for n in received] == [1, 2, 3, 4, 5, 6, 7]


def test_misses_no_event_while_several_processes_write_at_once(open_app: Any) -> None:
    writers = [open_app() for _ in range(3)]
    reader = Reader(ApplicationSubscription(open_app(), topics=[CREATED]))
    created: list[UUID] = []
    lock = threading.Lock()

    def write(app: ArtifactsApplication) -> None:
        for _ in range(40):
            [artifact_id] = create(app)
            with lock:
                created.append(artifact_id)

    threads = [threading.Thread(target=write, args=(app,)) for app in writers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        received = reader.take(len(created), timeout=10)
        with pytest.raises(queue.Empty):
            reader.received.get(timeout=0.3)
    finally:
        reader.stop()

    assert sorted(str(i) for i, _ in received) == sorted(str(i) for i in created)
    positions = [position for _, position in received]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions) == 120
