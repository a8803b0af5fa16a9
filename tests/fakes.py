"""Small hand-written stand-ins for the ports, shared by the unit and workflow tests.

The event store needs no fake: eventsourcing's in-memory (POPO) persistence is the test
double the library already gives us, so tests use a real ``ArtifactsApplication`` on it.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactPage, InvalidCursor
from application.ports import (
    BlobEntry,
    BlobNotFound,
    KeyDestroyed,
    KeyStore,
    StoredBlob,
    SummaryCandidate,
    SummaryUnavailable,
)
from infrastructure.eventstore.shredding import new_key, sealing

# eventsourcing's in-memory persistence, under both keys the application reads.
IN_MEMORY_ENV = {
    "PERSISTENCE_MODULE": "eventsourcing.popo",
    "ARTIFACTS_PERSISTENCE_MODULE": "eventsourcing.popo",
}


def in_memory_artifacts(keys: KeyStore | None = None) -> ArtifactsApplication:
    """A real ``ArtifactsApplication`` on eventsourcing's in-memory persistence, sealing
    personal fields as every process does, under ``keys`` (by default its own in memory).

    The environment is given explicitly, the application-prefixed key too, so that a
    ``PERSISTENCE_MODULE`` (or ``ARTIFACTS_PERSISTENCE_MODULE``) in the developer's
    shell can never point a unit test at a real database.
    """
    return ArtifactsApplication(
        env=dict(IN_MEMORY_ENV), sealing=sealing(keys if keys is not None else InMemoryKeyStore())
    )


class InMemoryKeyStore:
    """The artifacts' keys in a dict; a destroyed one leaves ``None`` (a tombstone)."""

    def __init__(self) -> None:
        self.keys: dict[uuid.UUID, bytes | None] = {}

    def key_for(self, artifact_id: uuid.UUID) -> bytes | None:
        return self.keys.get(artifact_id)

    def create_key(self, artifact_id: uuid.UUID) -> bytes:
        if artifact_id not in self.keys:
            self.keys[artifact_id] = new_key()
        key = self.keys[artifact_id]
        if key is None:
            raise KeyDestroyed(f"the key of artifact {artifact_id} was destroyed")
        return key

    def destroy_key(self, artifact_id: uuid.UUID) -> None:
        self.keys[artifact_id] = None


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

    def check(self) -> None:
        """Always reachable: it is a dict."""

    def entries(self) -> Iterator[BlobEntry]:
        """Every blob, written now (the fake keeps no times)."""
        now = time.time()
        for location, content in sorted(self.blobs.items()):
            yield BlobEntry(location, len(content), now)

    def delete(self, location: str) -> None:
        self.blobs.pop(location, None)


class FakeSummarizer:
    """The ``Summarizer`` port: the text's first line, or the failures it was given first.

    ``failures`` are raised in order, one per call, before any summary is written; the
    texts it was asked to summarize are kept in ``texts``.
    """

    source = "fake"
    model = "first-line"
    pipeline_version = "test"

    def __init__(self, failures: list[SummaryUnavailable] | None = None) -> None:
        self.failures = list(failures or [])
        self.texts: list[str] = []

    def summarize(self, text: str) -> SummaryCandidate:
        self.texts.append(text)
        if self.failures:
            raise self.failures.pop(0)
        return self.summary_of(text)

    @classmethod
    def summary_of(cls, text: str) -> SummaryCandidate:
        """The candidate this summarizer writes for ``text``."""
        lines = text.strip().splitlines()
        return SummaryCandidate(
            text=lines[0] if lines else "",
            source=cls.source,
            model=cls.model,
            pipeline_version=cls.pipeline_version,
        )


class FakeCatalog:
    """The ``ArtifactCatalog`` port: fixed pages by cursor, and a record of every call.

    ``pages`` maps each cursor it hands out (None for the first page) to its page; any
    other cursor is an ``InvalidCursor``. ``wait_for`` answers ``caught_up``.
    """

    def __init__(
        self, pages: dict[str | None, ArtifactPage] | None = None, *, caught_up: bool = True
    ) -> None:
        self.pages = pages or {None: ArtifactPage(items=[], next_cursor=None)}
        self.caught_up = caught_up
        self.listed: list[dict[str, object]] = []
        self.waited: list[tuple[int, float]] = []

    def list_artifacts(
        self,
        *,
        status: str | None,
        mime_type: str | None,
        limit: int,
        cursor: str | None,
        tenant: str | None,
    ) -> ArtifactPage:
        self.listed.append(
            {
                "status": status,
                "mime_type": mime_type,
                "limit": limit,
                "cursor": cursor,
                "tenant": tenant,
            }
        )
        try:
            return self.pages[cursor]
        except KeyError:
            raise InvalidCursor(f"not a cursor of this catalog: {cursor!r}") from None

    def wait_for(self, position: int, timeout: float) -> bool:
        self.waited.append((position, timeout))
        return self.caught_up

    def stored_bytes(self, tenant: str) -> int:
        return 0

    def created_before(self, cutoff: datetime, limit: int) -> list[uuid.UUID]:
        return []
