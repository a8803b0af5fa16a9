"""LocalBlobStore on the filesystem: fsynced files, renamed into place, never a path from
outside. What every blob store promises is tests/contract/test_blob_stores.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.ports import BlobNotFound
from infrastructure.blobstore import LocalBlobStore


def files_under(root: Path) -> list[Path]:
    return sorted(path.relative_to(root) for path in root.rglob("*") if path.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_a_committed_blob_is_a_file_at_its_location(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"durable bytes")

    blob = writer.commit()

    assert (store.root / blob.location).read_bytes() == b"durable bytes"
    with store.open(blob.location) as stored:
        assert stored.read() == b"durable bytes"


def test_commit_leaves_no_temporary_file_behind(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"x" * 10_000)

    blob = writer.commit()

    assert list((store.root / "tmp").iterdir()) == []
    assert files_under(store.root) == [Path(blob.location)]


def test_an_aborted_blob_leaves_nothing(store: LocalBlobStore) -> None:
    writer = store.writer()
    writer.write(b"a rejected upload")

    writer.abort()

    assert files_under(store.root) == []


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
