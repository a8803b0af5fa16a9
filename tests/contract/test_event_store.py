"""What the application needs from any event store: aggregates come back as they were
saved, and of concurrent writers to one stream only one can append each version."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from domain.artifact import Artifact, ArtifactStatus
from tests.contract.backends import Backend, Tally

WRITERS = 6


def versions(backend: Backend, aggregate_id: UUID) -> list[int]:
    """The stored versions of one aggregate, read by a fresh application instance."""
    return [e.originator_version for e in backend.app().events.get(aggregate_id)]


def test_an_artifact_saved_by_one_process_loads_in_another(backend: Backend) -> None:
    [artifact_id] = backend.upload(1)

    loaded = backend.app().get_artifact(artifact_id)

    assert loaded.id == artifact_id
    assert loaded.version == Artifact.INITIAL_VERSION == 0
    assert loaded.status is ArtifactStatus.UPLOADED
    assert (loaded.filename, loaded.content_type, loaded.size) == ("file-0.txt", "text/plain", 1)


def test_a_stream_of_several_events_loads_whole_and_in_order(backend: Backend) -> None:
    tally = Tally()
    for _ in range(3):
        tally.count_one()
    backend.writer.save(tally)

    loaded: Tally = backend.app().repository.get(tally.id)

    assert (loaded.count, loaded.version) == (3, 3)
    assert versions(backend, tally.id) == [0, 1, 2, 3]


def test_of_concurrent_writers_of_one_version_exactly_one_wins(backend: Backend) -> None:
    tally = Tally()
    backend.writer.save(tally)
    apps = [backend.app() for _ in range(WRITERS)]
    all_loaded = threading.Barrier(WRITERS)

    def write(i: int) -> bool:
        stale: Tally = apps[i].repository.get(tally.id)
        all_loaded.wait(timeout=30)  # every writer holds version 0 before anyone saves
        stale.count_one()
        try:
            apps[i].save(stale)
        except RecordConflictError:
            return False
        return True

    with ThreadPoolExecutor(WRITERS) as pool:
        won = list(pool.map(write, range(WRITERS)))

    assert won.count(True) == 1
    assert versions(backend, tally.id) == [0, 1]
    # A loser that reloads sees the winner's event and succeeds on top of it.
    loser = apps[won.index(False)]
    current: Tally = loser.repository.get(tally.id)
    current.count_one()
    loser.save(current)
    assert versions(backend, tally.id) == [0, 1, 2]


def test_concurrent_writers_that_reload_on_conflict_keep_the_stream_gapless(
    backend: Backend,
) -> None:
    tally = Tally()
    backend.writer.save(tally)
    apps = [backend.app() for _ in range(WRITERS)]
    per_writer = 5

    def write(i: int) -> None:
        for _ in range(per_writer):
            while True:
                current: Tally = apps[i].repository.get(tally.id)
                current.count_one()
                try:
                    apps[i].save(current)
                    break
                except RecordConflictError:
                    continue  # someone else got this version first: reload, try again

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))

    total = WRITERS * per_writer
    assert versions(backend, tally.id) == list(range(total + 1))
    final: Tally = backend.app().repository.get(tally.id)
    assert final.count == total
