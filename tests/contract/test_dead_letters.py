"""Dead letters on every event store: one bad event never blocks the events behind it.

An event a consumer cannot handle for a reason of its own is recorded as a dead letter with
the position that passes it, in one transaction, and the consumer moves on in order; one
marked for retry is handled again once its cause is fixed, without moving the position back.
"""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.utils import get_topic
from temporalio.service import RPCError, RPCStatusCode

from application.artifacts import ArtifactsApplication
from application.ports import ProcessingRequest
from domain.artifact import ArtifactCreated
from infrastructure.eventstore.dead_letters import DeadLetter, DeadLetters, DeadLetterStatus
from infrastructure.pipeline_worker import CONSUMER
from infrastructure.read_model import artifact_catalog
from infrastructure.read_worker import ReadWorker
from tests.contract.backends import Backend, RecordingOrchestrator, running
from tests.support import wait_until
from tests.support.events import insert_undecodable_created, repair

APP = ArtifactsApplication.name


class RefusingOrchestrator(RecordingOrchestrator):
    """Refuses the artifacts in ``refused`` for good (INVALID_ARGUMENT), and fails the first
    ``unavailable`` starts as Temporal does while it is away."""

    def __init__(self, *, unavailable: int = 0) -> None:
        super().__init__()
        self.refused: set[uuid.UUID] = set()
        self.unavailable = unavailable

    async def start_processing(self, request: ProcessingRequest) -> bool:
        if self.unavailable > 0:
            self.unavailable -= 1
            raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
        if request.artifact_id in self.refused:
            raise RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b"")
        return await super().start_processing(request)


def _letter(position: int) -> DeadLetter:
    return DeadLetter(
        position=position,
        topic=get_topic(ArtifactCreated),
        originator_id=str(uuid.uuid4()),
        originator_version=0,
        error="ValueError: does not decode",
    )


def test_a_dead_letter_and_the_position_that_passes_it_commit_together(
    backend: Backend,
) -> None:
    store = backend.tracking()
    start = backend.start or 0
    store.advance(Tracking(APP, start + 2), [_letter(start + 2)])
    assert [d.position for d in store.dead_letters()] == [start + 2]
    assert store.max_tracking_id(APP) == start + 2

    # A position the store refuses (a second worker got there first, or a crash replayed
    # it) takes its dead letter with it: neither is written.
    with pytest.raises(IntegrityError):
        store.advance(Tracking(APP, start + 1), [_letter(start + 1)])
    assert [d.position for d in store.dead_letters()] == [start + 2]


def test_the_read_models_dead_letters_commit_with_its_position(backend: Backend) -> None:
    view = artifact_catalog(backend.settings)
    try:
        start = backend.start or 0
        view.advance(Tracking(APP, start + 3), [_letter(start + 3)])
        with pytest.raises(IntegrityError):
            view.advance(Tracking(APP, start + 3), [_letter(start + 4)])
        assert [d.position for d in view.dead_letters()] == [start + 3]
        assert view.max_tracking_id(APP) == start + 3
    finally:
        view.close()


async def test_an_undecodable_event_is_a_dead_letter_and_nothing_behind_it_waits(
    backend: Backend,
) -> None:
    orchestrator = RecordingOrchestrator()
    _, bad = insert_undecodable_created(backend.writer)
    ids = backend.upload(5)
    tracking = backend.tracking()
    worker = backend.worker(orchestrator)
    worker._tracking = tracking  # the test reads the same store the worker writes

    async with running(worker):
        await wait_until(
            lambda: orchestrator.requested(ids),
            timeout=20,
            what="the uploads behind the bad event are started",
        )
        head = backend.writer.recorder.max_notification_id()
        await wait_until(
            lambda: tracking.max_tracking_id(APP) == head,
            timeout=20,
            what="the worker's position reaches the head",
        )

    (letter,) = tracking.dead_letters()
    assert letter.position == bad
    assert letter.topic == get_topic(ArtifactCreated)
    assert letter.status is DeadLetterStatus.OPEN
    assert letter.attempts == 1
    assert worker.metrics.dead_letters._value.get() == 1
    assert sorted(orchestrator.started) == sorted(ids)

    # A restart neither delivers it again nor stalls on it.
    again = RecordingOrchestrator()
    async with running(backend.worker(again)):
        more = backend.upload(2)
        await wait_until(
            lambda: again.requested(more),
            timeout=20,
            what="the new uploads are started after a restart",
        )
    assert sorted(again.started) == sorted(more)
    assert len(tracking.dead_letters()) == 1


async def test_transient_failures_hold_the_position_and_make_no_dead_letter(
    backend: Backend,
) -> None:
    orchestrator = RefusingOrchestrator(unavailable=3)
    ids = backend.upload(3)
    worker = backend.worker(orchestrator)
    async with running(worker):
        await wait_until(
            lambda: sorted(orchestrator.started) == sorted(ids),
            timeout=30,
            what="every upload is started",
        )
    assert worker.dead_letters.dead_letters() == []


async def test_a_permanent_refusal_is_a_dead_letter_and_a_retry_resolves_it_once_fixed(
    backend: Backend,
) -> None:
    orchestrator = RefusingOrchestrator()
    refused, *others = backend.upload(3)
    orchestrator.refused.add(refused)
    worker = backend.worker(orchestrator)
    worker._dead_letter_poll_seconds = 0.1
    store = worker.dead_letters
    admin = DeadLetters({CONSUMER: backend.tracking()})

    async with running(worker):
        await wait_until(
            lambda: len(store.dead_letters()) == 1,
            timeout=20,
            what="the refused start is a dead letter",
        )
        await wait_until(
            lambda: orchestrator.requested(others),
            timeout=20,
            what="the refused start is a dead letter",
        )
        (letter,) = store.dead_letters()
        assert "INVALID_ARGUMENT" in letter.error or "bad request" in letter.error
        position = store.max_tracking_id(APP)

        orchestrator.refused.clear()  # the cause, fixed
        admin.retry(CONSUMER, letter.position)
        await wait_until(
            lambda: store.dead_letter(letter.position).status is DeadLetterStatus.RESOLVED,
            timeout=20,
            what="the dead letter is resolved or retried",
        )

    assert refused in orchestrator.started
    assert store.max_tracking_id(APP) == position  # never moved back


async def test_a_retry_that_fails_again_keeps_the_dead_letter_with_the_new_attempt(
    backend: Backend,
) -> None:
    _, bad = insert_undecodable_created(backend.writer)
    worker = backend.worker(RecordingOrchestrator())
    worker._dead_letter_poll_seconds = 0.1
    store = worker.dead_letters
    async with running(worker):
        await wait_until(
            lambda: len(store.dead_letters()) == 1, timeout=20, what="the dead letter is recorded"
        )
        store.mark_for_retry(bad)
        await wait_until(
            lambda: store.dead_letter(bad).attempts == 2,
            timeout=20,
            what="the other uploads are started",
        )
    letter = store.dead_letter(bad)
    assert letter.status is DeadLetterStatus.OPEN


async def test_the_read_worker_records_a_dead_letter_moves_on_and_a_retry_repairs_the_row(
    backend: Backend,
) -> None:
    if backend.name == "eventstoredb":
        pytest.skip("repairing a stored event needs SQL")
    good, bad = insert_undecodable_created(backend.writer)
    ids = backend.upload(3)
    view = artifact_catalog(backend.settings)
    worker = ReadWorker(view, backend.app(), dead_letter_poll_seconds=0.1)
    try:
        async with running(worker):
            head = backend.writer.recorder.max_notification_id()
            assert head is not None
            await wait_until(
                lambda: view.has_tracking_id(APP, head),
                timeout=20,
                what="the retried dead letter is resolved",
            )
            listed = {
                row.id
                for row in view.list_artifacts(
                    status=None, mime_type=None, limit=10, cursor=None, tenant=None
                ).items
            }
            assert listed == set(ids)
            (letter,) = view.dead_letters()
            assert letter.position == bad

            repair(backend.writer, good)
            view.mark_for_retry(bad)
            await wait_until(
                lambda: view.dead_letter(bad).status is DeadLetterStatus.RESOLVED,
                timeout=20,
                what="the dead letter is recorded",
            )
            listed = {
                row.id
                for row in view.list_artifacts(
                    status=None, mime_type=None, limit=10, cursor=None, tenant=None
                ).items
            }
            assert good.originator_id in listed
            assert view.max_tracking_id(APP) == head
    finally:
        view.close()
