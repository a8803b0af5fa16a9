"""Blobs on the local filesystem, under names the server generates.

A blob is written to ``tmp/`` first and renamed into place only after an fsync, so a
location handed out always holds a complete file; a crash mid-upload leaves only a
temporary file behind. Locations (``locations.py``) are checked on the way back in, so no
caller-supplied string ever becomes a path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from application.ports import BlobEntry, BlobNotFound, StoredBlob
from infrastructure.blobstore.locations import LOCATION, TEMPORARY, location_of, new_name


class LocalBlobWriter:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._name = new_name()
        self._tmp_path = root / "tmp" / self._name
        self._file: BinaryIO | None = self._tmp_path.open("xb")
        self._hash = hashlib.sha256()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "blob already committed or aborted"
        self._file.write(chunk)
        self._hash.update(chunk)
        self._size += len(chunk)

    def commit(self) -> StoredBlob:
        assert self._file is not None, "blob already committed or aborted"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        location = location_of(self._name)
        final_path = self._root / location
        final_path.parent.mkdir(exist_ok=True)
        os.replace(self._tmp_path, final_path)
        _fsync_dir(final_path.parent)
        return StoredBlob(location=location, size=self._size, sha256=self._hash.hexdigest())

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._tmp_path.unlink(missing_ok=True)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def writer(self) -> LocalBlobWriter:
        return LocalBlobWriter(self.root)

    def open(self, location: str) -> BinaryIO:
        if not LOCATION.fullmatch(location):
            raise BlobNotFound(f"not a blob location: {location!r}")
        try:
            return (self.root / location).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(f"no blob at {location}") from None

    def check(self) -> None:
        tmp = self.root / "tmp"
        if not os.access(tmp, os.W_OK | os.X_OK):
            raise OSError(f"{tmp} is not a writable directory")

    def entries(self) -> Iterator[BlobEntry]:
        """Blobs (``3f/3f2a…``) and unfinished writes (``tmp/…``); any other file under the
        root is not the store's and is never listed."""
        if not self.root.is_dir():
            return
        for directory in sorted(self.root.iterdir()):
            if not directory.is_dir():
                continue
            temporary = directory.name == "tmp"
            pattern = TEMPORARY if temporary else LOCATION
            for path in sorted(directory.iterdir()):
                location = f"{directory.name}/{path.name}"
                if not pattern.fullmatch(location):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # committed or aborted meanwhile
                if path.is_file():
                    yield BlobEntry(location, stat.st_size, stat.st_mtime, temporary)

    def delete(self, location: str) -> None:
        if not (LOCATION.fullmatch(location) or TEMPORARY.fullmatch(location)):
            raise BlobNotFound(f"not a blob location: {location!r}")
        (self.root / location).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
