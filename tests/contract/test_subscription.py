"""What the consumers need from any event store: a subscription from a position yields
every later event once, in order, live; and a recorded position survives a restart."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import get_topic

from application.artifacts import ArtifactsApplication
from domain.artifact import ArtifactCreated
from tests.contract.backends import Backend, Tally

CREATED = [get_topic(ArtifactCreated)]


class Reader:
    """Reads a blocking subscription in a thread, so the test can wait with a deadline."""

    def __init__(self, subscription: ApplicationSubscription[Any]) -> None:
        self._items: queue.Queue[tuple[Any, Tracking]] = queue.Queue()
        self._subscription = subscription
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for item in self._subscription:
            self._items.put(item)

    def take(self, n: int, timeout: float = 10) -> list[tuple[Any, Tracking]]:
        return [self._items.get(timeout=timeout) for _ in range(n)]

    def nothing_more(self, wait: float = 0.5) -> bool:
        try:
            self._items.get(timeout=wait)
        except queue.Empty:
            return True
        return False

    def stop(self) -> None:
        self._subscription.stop()
        self._thread.join(timeout=10)


@contextmanager
def subscribed(app: ArtifactsApplication, gt: int | None) -> Iterator[Reader]:
    reader = Reader(ApplicationSubscription(app, gt=gt, topics=CREATED))
    try:
        yield reader
    finally:
        reader.stop()


def test_a_subscription_from_a_position_yields_the_later_events_in_order_then_new_ones(
    backend: Backend,
) -> None:
    backend.upload(1)
    backend.writer.save(Tally())  # an event the subscription does not follow
    position = backend.writer.recorder.max_notification_id()
    later = backend.upload(3)

    with subscribed(backend.app(), gt=position) as reader:
        got = reader.take(3)
        assert [e.originator_id for e, _ in got] == later
        ids = [t.notification_id for _, t in got]
        assert ids == sorted(ids)
        assert position is not None
        assert ids[0] > position
        assert {t.application_name for _, t in got} == {ArtifactsApplication.name}

        [live] = backend.upload(1)
        [(event, _)] = reader.take(1)
        assert event.originator_id == live
        assert reader.nothing_more()


def test_a_consumer_resumes_after_its_recorded_position(backend: Backend) -> None:
    uploaded = backend.upload(3)
    with subscribed(backend.app(), gt=backend.start) as reader:
        got = reader.take(3)
    assert [e.originator_id for e, _ in got] == uploaded
    tracking = backend.tracking("contract_consumer")
    tracking.insert_tracking(got[1][1])  # handled the first two, then "crashed"

    restarted = backend.tracking("contract_consumer")  # a new process, its own connections
    position = restarted.max_tracking_id(ArtifactsApplication.name)
    assert position == got[1][1].notification_id
    with subscribed(backend.app(), gt=position) as reader:
        [(event, _)] = reader.take(1)
        assert event.originator_id == uploaded[2]
        assert reader.nothing_more()


def test_a_position_is_recorded_once_and_never_moves_back(backend: Backend) -> None:
    backend.upload(2)
    with subscribed(backend.app(), gt=backend.start) as reader:
        [(_, first), (_, second)] = reader.take(2)
    assert first.notification_id < second.notification_id
    tracking = backend.tracking("contract_consumer")
    tracking.insert_tracking(second)

    with pytest.raises(IntegrityError):
        tracking.insert_tracking(second)  # a second consumer recording the same event
    with pytest.raises(IntegrityError):
        tracking.insert_tracking(first)  # a slower one, behind
    assert tracking.max_tracking_id(ArtifactsApplication.name) == second.notification_id
