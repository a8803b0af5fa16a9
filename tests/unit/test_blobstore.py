"""LocalBlobStore: complete files under server-chosen names, or nothing at all."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from application.ports import BlobNotFound
from infrastructure.blobstore import LocalBlobStore


def files_under(root: Path) -> list[Path]:
    return sorted(path.relative_to(root) for path in root.rglob("*") if path.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_a_committed_blob_reports_its_size_and_sha256(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"hello, ")
    writer.write(b"world")

    blob = writer.commit()

    assert blob.size == 12
    assert blob.sha256 == hashlib.sha256(b"hello, world").hexdigest()
    assert writer.size == 12


def test_a_committed_blob_is_a_file_at_its_location(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"durable bytes")

    blob = writer.commit()

    assert (store.root / blob.location).read_bytes() == b"durable bytes"
    with store.open(blob.location) as stored:
        assert stored.read() == b"durable bytes"


def test_a_fresh_store_on_the_same_directory_reads_committed_blobs(tmp_path: Path) -> None:
    writer = LocalBlobStore(tmp_path / "blobs").writer()
    writer.write(b"still here")
    blob = writer.commit()

    with LocalBlobStore(tmp_path / "blobs").open(blob.location) as stored:
        assert stored.read() == b"still here"


def test_locations_are_server_names_that_differ_per_blob(store: LocalBlobStore) -> None:
    locations = set()
    for _ in range(3):
        writer = store.writer()
        writer.write(b"same content")
        locations.add(writer.commit().location)

    assert len(locations) == 3
    for location in locations:
        prefix, name = location.split("/")
        assert len(name) == 32
        assert name.startswith(prefix)


def test_commit_leaves_no_temporary_file_behind(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"x" * 10_000)

    blob = writer.commit()

    assert list((store.root / "tmp").iterdir()) == []
    assert files_under(store.root) == [Path(blob.location)]


def test_nothing_is_visible_before_commit(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"half an upload")

    assert [p for p in files_under(store.root) if p.parts[0] != "tmp"] == []
    writer.abort()


def test_an_aborted_blob_leaves_nothing(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"a rejected upload")

    writer.abort()

    assert files_under(store.root) == []


def test_abort_after_commit_keeps_the_blob(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"keep me")
    blob = writer.commit()

    writer.abort()

    assert (store.root / blob.location).read_bytes() == b"keep me"


def test_an_empty_blob_can_be_committed(store: LocalBlobStore) -> None:
    blob = store.writer().commit()

    assert blob.size == 0
    assert blob.sha256 == hashlib.sha256(b"").hexdigest()


def test_a_missing_blob_is_not_found(store: LocalBlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.open("ab/ab0123456789abcdef0123456789abcd")


@pytest.mark.parametrize(
    "location",
    [
        "",
        "../outside",
        "../../etc/passwd",
        "/etc/passwd",
        "ab/../../../etc/passwd",
        "tmp/ab0123456789abcdef0123456789abcd",
        "AB/AB0123456789ABCDEF0123456789ABCD",
        "ab/ab0123456789abcdef0123456789abc",
        "ab/ab0123456789abcdef0123456789abcd/",
        "ab\\ab0123456789abcdef0123456789abcd",
        "ab/ab0123456789abcdef0123456789abcd\n",
    ],
)
def test_a_malformed_location_is_refused_without_touching_the_filesystem(
    tmp_path: Path, location: str
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    # A file that each traversal would reach if the location were used as a path.
    (tmp_path / "outside").write_bytes(b"secret")

    with pytest.raises(BlobNotFound, match="not a blob location"):
        store.open(location)


def test_a_temporary_file_cannot_be_opened_as_a_blob(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"in progress")
    [tmp_file] = (store.root / "tmp").iterdir()

    with pytest.raises(BlobNotFound):
        store.open(f"tmp/{tmp_file.name}")
    writer.abort()
