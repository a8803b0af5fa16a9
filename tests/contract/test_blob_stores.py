"""Every blob store keeps the same promises: complete blobs under server-chosen names, or
nothing at all. Each test runs on the local directory and on a real S3-compatible server
(SeaweedFS), through the settings that choose it (``BLOB_STORE``)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from application.ports import BlobEntry, BlobNotFound, BlobStore
from infrastructure.blobstore.locations import LOCATION
from infrastructure.blobstore.s3 import S3Misconfigured
from infrastructure.config import Settings
from infrastructure.di.container import default_blob_store
from tests.support import SeaweedFS, free_port

MiB = 1024 * 1024
PART = 5 * MiB  # the smallest part S3 allows: the fewest bytes that make a blob multi-part


@pytest.fixture(params=["local", "s3"])
def settings_of_store(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", s3_part_size_mb=PART // MiB)
    if request.param == "s3":
        server: SeaweedFS = request.getfixturevalue("seaweedfs_server")
        settings = server.settings(settings)
    return settings


@pytest.fixture
def store(settings_of_store: Settings) -> BlobStore:
    return default_blob_store(settings_of_store)


def stored(store: BlobStore) -> list[BlobEntry]:
    return [entry for entry in store.entries() if not entry.temporary]


def unfinished(store: BlobStore) -> list[BlobEntry]:
    return [entry for entry in store.entries() if entry.temporary]


def read_all(store: BlobStore, location: str) -> bytes:
    with store.open(location) as blob:
        return blob.read()


def test_a_committed_blob_reads_back_with_its_size_and_sha256(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"hello, ")
    writer.write(b"world")

    blob = writer.commit()

    assert (blob.size, writer.size) == (12, 12)
    assert blob.sha256 == hashlib.sha256(b"hello, world").hexdigest()
    assert read_all(store, blob.location) == b"hello, world"


def test_a_fresh_store_on_the_same_settings_reads_committed_blobs(
    settings_of_store: Settings,
) -> None:
    writer = default_blob_store(settings_of_store).writer()
    writer.write(b"still here")
    blob = writer.commit()

    assert read_all(default_blob_store(settings_of_store), blob.location) == b"still here"


def test_locations_are_server_names_that_differ_per_blob(store: BlobStore) -> None:
    locations = set()
    for _ in range(3):
        writer = store.writer()
        writer.write(b"same content")
        locations.add(writer.commit().location)

    assert len(locations) == 3
    assert all(LOCATION.fullmatch(location) for location in locations)


def test_nothing_is_visible_before_commit(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"half an upload")

    assert stored(store) == []
    writer.abort()


def test_an_aborted_blob_leaves_nothing(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"a rejected upload")

    writer.abort()

    assert list(store.entries()) == []


def test_an_aborted_multi_part_blob_leaves_nothing(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(os.urandom(PART + 1))

    writer.abort()

    assert list(store.entries()) == []


def test_abort_after_commit_keeps_the_blob(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(b"keep me")
    blob = writer.commit()

    writer.abort()

    assert read_all(store, blob.location) == b"keep me"


def test_an_empty_blob_can_be_committed(store: BlobStore) -> None:
    blob = store.writer().commit()

    assert (blob.size, blob.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert read_all(store, blob.location) == b""


def test_a_large_blob_is_streamed_to_the_store_part_by_part(store: BlobStore) -> None:
    content = os.urandom(2 * PART + PART // 2)  # three parts, the last a short one
    writer = store.writer()
    chunk = 256 * 1024
    for start in range(0, 2 * PART + chunk, chunk):
        writer.write(content[start : start + chunk])

    # Two parts' worth has reached the store already, as an unfinished write: nothing of
    # the size of the whole blob waits in memory for the commit.
    [partial] = unfinished(store)
    assert partial.size >= 2 * PART - 64 * 1024
    assert stored(store) == []

    writer.write(content[2 * PART + chunk :])
    blob = writer.commit()

    assert (blob.size, blob.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    assert read_all(store, blob.location) == content
    assert unfinished(store) == []


def test_a_blob_is_read_in_pieces(store: BlobStore) -> None:
    content = os.urandom(300_000)
    writer = store.writer()
    writer.write(content)
    blob = writer.commit()

    pieces = []
    with store.open(blob.location) as reader:
        while piece := reader.read(64 * 1024):
            pieces.append(piece)

    assert b"".join(pieces) == content
    assert len(pieces) > 1


def test_a_missing_blob_is_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.open("ab/ab0123456789abcdef0123456789abcd")


@pytest.mark.parametrize(
    "location",
    ["", "../outside", "/etc/passwd", "ab/../../etc/passwd", "tmp/" + "ab" * 16, "AB/" + "AB" * 16],
)
def test_a_malformed_location_is_refused(store: BlobStore, location: str) -> None:
    with pytest.raises(BlobNotFound, match="not a blob location"):
        store.open(location)


def test_entries_list_blobs_with_their_size_and_time(store: BlobStore) -> None:
    before = time.time()
    writers = [store.writer() for _ in range(2)]
    writers[0].write(b"one")
    writers[1].write(b"three")
    blobs = [writer.commit() for writer in writers]

    entries = {entry.location: entry for entry in stored(store)}

    assert {loc: e.size for loc, e in entries.items()} == {b.location: b.size for b in blobs}
    # Times come from the store's clock, which may round to the second.
    assert all(abs(entry.modified_at - before) < 60 for entry in entries.values())


def test_a_deleted_blob_is_gone_and_deleting_it_again_is_no_error(store: BlobStore) -> None:
    kept, gone = store.writer(), store.writer()
    kept.write(b"kept")
    gone.write(b"gone")
    kept_blob, gone_blob = kept.commit(), gone.commit()

    store.delete(gone_blob.location)
    store.delete(gone_blob.location)

    assert [entry.location for entry in stored(store)] == [kept_blob.location]
    with pytest.raises(BlobNotFound):
        store.open(gone_blob.location)


def test_an_unfinished_write_is_listed_and_can_be_deleted(store: BlobStore) -> None:
    writer = store.writer()
    writer.write(os.urandom(PART + 1))  # enough to reach any store before commit

    [entry] = unfinished(store)
    assert entry.location.startswith("tmp/")
    with pytest.raises(BlobNotFound):
        store.open(entry.location)
    store.delete(entry.location)

    assert list(store.entries()) == []
    writer.abort()


def test_check_passes_while_the_store_can_take_blobs(store: BlobStore) -> None:
    store.check()


def test_check_fails_when_the_store_is_away(settings_of_store: Settings) -> None:
    # Local: the directory is gone; S3: nothing answers at the endpoint.
    away = settings_of_store.model_copy(
        update={
            "data_dir": settings_of_store.data_dir / "gone",
            "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
        }
    )
    store = default_blob_store(away)
    if away.blob_store == "local":
        (away.blob_dir / "tmp").rmdir()

    with pytest.raises(Exception):  # noqa: B017, PT011 - each store has its own error
        store.check()


def test_s3_without_a_bucket_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="BLOB_STORE=s3 needs S3_BUCKET"):
        Settings(blob_store="s3")
    with pytest.raises(ValidationError, match="S3_ENDPOINT_URL must start with http"):
        Settings(blob_store="s3", s3_bucket="b", s3_endpoint_url="127.0.0.1:8333")
    with pytest.raises(ValidationError, match="both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        Settings(blob_store="s3", s3_bucket="b", aws_access_key_id="key")


@pytest.mark.parametrize(
    "wrong", [{"s3_bucket": "no-such-bucket"}, {"aws_secret_access_key": SecretStr("wrong")}]
)
def test_a_bucket_or_credentials_the_store_refuses_stop_the_process_at_start(
    tmp_path: Path, seaweedfs_server: SeaweedFS, wrong: dict[str, object]
) -> None:
    settings = seaweedfs_server.settings(Settings(data_dir=tmp_path)).model_copy(update=wrong)

    with pytest.raises(S3Misconfigured, match="S3_BUCKET"):
        default_blob_store(settings)
