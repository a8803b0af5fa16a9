"""The orphan sweep: real blobs under tmp_path, a real SQLite event store."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.artifacts import ArtifactsApplication
from application.ports import ContentFacts, StoredBlob
from infrastructure import sweep_orphans as sweep_module
from infrastructure.blobstore import LocalBlobStore
from infrastructure.config import Settings
from infrastructure.eventstore import application_env
from infrastructure.processing.text import store_text
from infrastructure.sweep_orphans import sweep_orphans
from tests.support import make_settings

HOUR = 3600


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, "sqlite")


@pytest.fixture
def artifacts(settings: Settings) -> Iterator[ArtifactsApplication]:
    artifacts = ArtifactsApplication(env=application_env(settings))
    yield artifacts
    artifacts.close()


@pytest.fixture
def blobs(settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(settings.blob_dir)


def put(blobs: LocalBlobStore, content: bytes) -> StoredBlob:
    writer = blobs.writer()
    writer.write(content)
    return writer.commit()


def path_of(blobs: LocalBlobStore, location: str) -> Path:
    return blobs.root / location


def loc(blobs: LocalBlobStore, path: Path) -> str:
    """The location the store lists a file under."""
    return path.relative_to(blobs.root).as_posix()


def age(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def upload(artifacts: ArtifactsApplication, blob: StoredBlob) -> uuid.UUID:
    return artifacts.create_artifact_once(
        idempotency_key=None,
        filename="a.txt",
        content_type="text/plain",
        size=blob.size,
        sha256=blob.sha256,
        storage_location=blob.location,
    ).id


def process(artifacts: ArtifactsApplication, artifact_id: uuid.UUID, *texts: StoredBlob) -> None:
    artifacts.record_processing_started(artifact_id, run=0, workflow_id="w")
    artifacts.record_processing_result(
        artifact_id,
        run=0,
        facts=ContentFacts(
            mime_type="text/plain",
            kind="text",
            page_count=None,
            char_count=1,
            text_locations=[t.location for t in texts],
        ),
    )


def temp_file(blobs: LocalBlobStore, content: bytes) -> Path:
    """A file in blobs/tmp, as an upload that crashed (or is still writing) leaves it."""
    path = blobs.root / "tmp" / uuid.uuid4().hex
    path.write_bytes(content)
    return path


def test_old_unreferenced_blobs_and_temp_files_are_deleted_and_the_rest_kept(
    artifacts: ArtifactsApplication, blobs: LocalBlobStore
) -> None:
    uploaded = put(blobs, b"uploaded")
    text = store_text(blobs, "extracted")
    process(artifacts, upload(artifacts, uploaded), text)
    for kept in (uploaded, text):
        age(path_of(blobs, kept.location), 2 * HOUR)
    orphan = age(path_of(blobs, put(blobs, b"orphan").location), 2 * HOUR)
    stale_tmp = age(temp_file(blobs, b"tmp"), 2 * HOUR)
    young_orphan = path_of(blobs, put(blobs, b"in flight").location)
    young_tmp = temp_file(blobs, b"writing")

    report = sweep_orphans(artifacts, blobs)

    assert (report.orphans, report.temp_files) == ([loc(blobs, orphan)], [loc(blobs, stale_tmp)])
    assert report.referenced == 2
    assert report.bytes == len(b"orphan") + len(b"tmp")
    assert not orphan.exists()
    assert not stale_tmp.exists()
    assert young_orphan.exists()
    assert young_tmp.exists()
    assert path_of(blobs, uploaded.location).read_bytes() == b"uploaded"
    assert path_of(blobs, text.location).read_bytes() == b"extracted"
    assert report.summary() == (
        "2 blobs referenced; deleted 1 orphaned blobs and 1 temporary files, 9 bytes"
    )


def test_a_dry_run_lists_the_orphans_and_deletes_nothing(
    artifacts: ArtifactsApplication, blobs: LocalBlobStore
) -> None:
    orphan = age(path_of(blobs, put(blobs, b"orphan").location), 2 * HOUR)
    stale_tmp = age(temp_file(blobs, b"tmp"), 2 * HOUR)

    report = sweep_orphans(artifacts, blobs, dry_run=True)

    assert (report.orphans, report.temp_files) == ([loc(blobs, orphan)], [loc(blobs, stale_tmp)])
    assert orphan.exists()
    assert stale_tmp.exists()
    assert "would delete (dry run) 1 orphaned blobs" in report.summary()


def test_the_grace_period_is_chosen_with_older_than(
    artifacts: ArtifactsApplication, blobs: LocalBlobStore
) -> None:
    ten_minutes_old = age(path_of(blobs, put(blobs, b"orphan").location), 600)

    kept = sweep_orphans(artifacts, blobs, older_than=HOUR)
    swept = sweep_orphans(artifacts, blobs, older_than=300)

    assert kept.orphans == []
    assert swept.orphans == [loc(blobs, ten_minutes_old)]
    assert not ten_minutes_old.exists()


def test_every_page_of_the_event_log_counts_and_old_runs_text_stays(
    artifacts: ArtifactsApplication, blobs: LocalBlobStore
) -> None:
    uploads = [put(blobs, f"upload {i}".encode()) for i in range(5)]
    ids = [upload(artifacts, blob) for blob in uploads]
    first_run_text = store_text(blobs, "run 0")
    process(artifacts, ids[-1], first_run_text)
    artifacts.request_reprocessing(ids[-1])
    for path in blobs.root.glob("??/*"):
        age(path, 2 * HOUR)

    # Pages of two notifications: references beyond the first page must be seen too.
    report = sweep_orphans(artifacts, blobs, older_than=0, page_size=2)

    assert report.orphans == []
    assert report.referenced == 6
    assert all(path_of(blobs, b.location).exists() for b in [*uploads, first_run_text])


def test_files_that_are_not_blobs_are_left_alone(
    artifacts: ArtifactsApplication, blobs: LocalBlobStore
) -> None:
    stranger = blobs.root / "ab" / "README"
    stranger.parent.mkdir()
    stranger.write_text("not a blob")
    age(stranger, 2 * HOUR)

    report = sweep_orphans(artifacts, blobs)

    assert report.orphans == []
    assert stranger.exists()


def test_the_command_sweeps_the_configured_data_dir(
    settings: Settings,
    artifacts: ArtifactsApplication,
    blobs: LocalBlobStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    referenced = put(blobs, b"kept")
    upload(artifacts, referenced)
    kept = age(path_of(blobs, referenced.location), 2 * HOUR)
    orphan = age(path_of(blobs, put(blobs, b"orphan").location), 2 * HOUR)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("EVENT_STORE", "sqlite")

    sweep_module.main(["--dry-run"])
    listed = capsys.readouterr().out.splitlines()
    sweep_module.main(["--older-than", "60"])
    deleted = capsys.readouterr().out.splitlines()

    assert listed == [
        f"orphan {loc(blobs, orphan)}",
        "1 blobs referenced; would delete (dry run) 1 orphaned blobs and 0 temporary files, "
        "6 bytes",
    ]
    assert deleted[0] == f"deleted {loc(blobs, orphan)}"
    assert not orphan.exists()
    assert kept.exists()


def test_nothing_written_since_the_earliest_open_run_began_is_swept_whatever_the_grace(
    artifacts: ArtifactsApplication, blobs: LocalBlobStore
) -> None:
    closed = upload(artifacts, put(blobs, b"closed run"))
    process(artifacts, closed)
    old_orphan = age(path_of(blobs, put(blobs, b"before any open run").location), 2 * HOUR)
    upload(artifacts, put(blobs, b"a run in flight"))
    # The text a run in flight has written and not yet recorded, and its write under way.
    in_flight_text = path_of(blobs, store_text(blobs, "page 1").location)
    in_flight_tmp = temp_file(blobs, b"page 2")

    report = sweep_orphans(artifacts, blobs, older_than=0)

    assert report.open_since is not None
    assert report.orphans == [loc(blobs, old_orphan)]
    assert report.temp_files == []
    assert in_flight_text.exists()
    assert in_flight_tmp.exists()


def test_once_every_run_has_an_outcome_the_grace_alone_decides(
    artifacts: ArtifactsApplication, blobs: LocalBlobStore
) -> None:
    artifact_id = upload(artifacts, put(blobs, b"upload"))
    artifacts.record_processing_failure(artifact_id, run=0, reason="run_terminated", message="")
    left_behind = path_of(blobs, store_text(blobs, "text of a terminated run").location)

    report = sweep_orphans(artifacts, blobs, older_than=0, now=time.time() + 1)

    assert report.open_since is None
    assert report.orphans == [loc(blobs, left_behind)]
    assert not left_behind.exists()


def test_a_reprocessing_request_opens_a_run_again(
    artifacts: ArtifactsApplication, blobs: LocalBlobStore
) -> None:
    artifact_id = upload(artifacts, put(blobs, b"upload"))
    process(artifacts, artifact_id)
    artifacts.request_reprocessing(artifact_id)
    new_run_text = path_of(blobs, store_text(blobs, "run 1").location)

    report = sweep_orphans(artifacts, blobs, older_than=0, now=time.time() + 1)

    assert report.open_since is not None
    assert new_run_text.exists()
