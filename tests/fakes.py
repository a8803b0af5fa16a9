"""Small hand-written stand-ins for the ports, shared by the unit and workflow tests.

The event store needs no fake: eventsourcing's in-memory (POPO) persistence is the test
double the library already gives us, so tests use a real ``ArtifactsApplication`` on it.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import BinaryIO

from application.artifacts import ArtifactsApplication
from application.ports import BlobNotFound, StoredBlob


def in_memory_artifacts() -> ArtifactsApplication:
    """A real ``ArtifactsApplication`` on eventsourcing's in-memory persistence.

    The environment is given explicitly, the application-prefixed key too, so that a
    ``PERSISTENCE_MODULE`` (or ``ARTIFACTS_PERSISTENCE_MODULE``) in the developer's
    shell can never point a unit test at a real database.
    """
    popo = "eventsourcing.popo"
    return ArtifactsApplication(
        env={"PERSISTENCE_MODULE": popo, "ARTIFACTS_PERSISTENCE_MODULE": popo}
    )


class FakeBlobWriter:
    def __init__(self, store: FakeBlobStore) -> None:
        self._store = store
        self._chunks: list[bytes] = []
        self._done = False

    @property
    def size(self) -> int:
        return sum(map(len, self._chunks))

    def write(self, chunk: bytes) -> None:
        assert not self._done, "blob already committed or aborted"
        self._chunks.append(chunk)

    def commit(self) -> StoredBlob:
        assert not self._done, "blob already committed or aborted"
        self._done = True
        content = b"".join(self._chunks)
        return self._store.put(content)

    def abort(self) -> None:
        self._done = True


class FakeBlobStore:
    """The ``BlobStore`` port as a dict of location -> bytes."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, content: bytes) -> StoredBlob:
        """Stores ``content`` directly, as a committed upload would have."""
        name = uuid.uuid4().hex
        location = f"{name[:2]}/{name}"
        self.blobs[location] = content
        return StoredBlob(
            location=location, size=len(content), sha256=hashlib.sha256(content).hexdigest()
        )

    def writer(self) -> FakeBlobWriter:
        return FakeBlobWriter(self)

    def open(self, location: str) -> BinaryIO:
        try:
            return io.BytesIO(self.blobs[location])
        except KeyError:
            raise BlobNotFound(f"no blob at {location}") from None
