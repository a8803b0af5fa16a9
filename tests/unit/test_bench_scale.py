"""The scale scenario's baseline: the pipeline worker's starts, without the pipeline."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from uuid import UUID

import pytest

from application.artifacts import ArtifactsApplication, processing_request
from application.ports import ProcessingRequest
from bench.scale import CountingOrchestrator, backlog_requests, start_all
from bench.trigger import create_backlog
from domain.artifact import ArtifactCreated


class RecordingOrchestrator:
    """Records the requests it is asked to start and how many were in flight at once."""

    def __init__(self, *, started_before: frozenset[int] = frozenset()) -> None:
        self.requests: list[ProcessingRequest] = []
        self.most_in_flight = 0
        self._in_flight = 0
        self._started_before = started_before

    async def start_processing(self, request: ProcessingRequest) -> bool:
        self.requests.append(request)
        self._in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self._in_flight)
        for _ in range(3):  # a round trip: every other starter gets its turn meanwhile
            await asyncio.sleep(0)
        self._in_flight -= 1
        return len(self.requests) - 1 not in self._started_before

    async def cancel_processing(self, artifact_id: UUID, run: int) -> None:
        raise AssertionError("the baseline cancels nothing")


def test_the_direct_starts_are_the_requests_the_worker_builds_from_the_backlog() -> None:
    app = ArtifactsApplication()
    create_backlog(app, 5)
    events = [
        app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=10)
    ]
    from_the_backlog = [processing_request(e) for e in events if isinstance(e, ArtifactCreated)]

    direct = backlog_requests(5)

    assert len(from_the_backlog) == 5
    same_ids = zip(direct, from_the_backlog, strict=True)
    assert [replace(r, artifact_id=e.artifact_id) for r, e in same_ids] == from_the_backlog
    assert len({r.artifact_id for r in direct}) == 5  # each a run of its own


def test_every_request_is_started_once_with_as_many_in_flight_as_asked() -> None:
    orchestrator = RecordingOrchestrator()
    requests = backlog_requests(50)

    rate = asyncio.run(start_all(orchestrator, requests, in_flight=16))

    assert rate > 0
    assert sorted(r.sha256 for r in orchestrator.requests) == sorted(r.sha256 for r in requests)
    assert len(orchestrator.requests) == len(requests)
    assert orchestrator.most_in_flight == 16


def test_a_start_refused_as_a_duplicate_fails_the_baseline_instead_of_counting() -> None:
    orchestrator = RecordingOrchestrator(started_before=frozenset({7}))

    with pytest.raises(RuntimeError, match="started before"):
        asyncio.run(start_all(orchestrator, backlog_requests(20), in_flight=4))


def test_the_counting_orchestrator_passes_starts_on_and_records_the_most_in_flight() -> None:
    inner = RecordingOrchestrator()
    counting = CountingOrchestrator(inner)
    requests = backlog_requests(30)

    asyncio.run(start_all(counting, requests, in_flight=5))

    assert inner.requests == requests
    assert counting.most_in_flight == 5
