"""The artifact list: a view whose rows and position change in one transaction.

``ArtifactListView`` is an eventsourcing ``TrackingRecorder``: every write the projection
asks for is made together with the tracking record of the event that caused it, in one
database transaction (sqlite.py, postgres.py). So the view is never ahead of or behind its
recorded position, and resuming from that position neither loses nor repeats a change.

An event delivered again anyway (a second read worker, a retried commit whose first attempt
had in fact succeeded) fails on its tracking record, which rolls its row change back too; the
view then sees that the position is already recorded and reports the event as a duplicate.
Row writes are also guarded by the event's ``originator_version``, so an older event can
never overwrite what a newer one wrote, whatever path it took.

The view is also the ``ArtifactCatalog`` (application/catalog.py) the API reads, and the
read worker's ``DeadLetterStore``: an event it cannot project is recorded as a dead letter
with its position in the same database; a write made with a ``Redelivery`` (a dead letter
handled again) resolves that dead letter in its transaction instead of recording a position.
"""

from __future__ import annotations

import base64
import binascii
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactPage, ArtifactRow, InvalidCursor
from domain.artifact import Artifact, ArtifactCreated, ArtifactErased
from infrastructure.eventstore.dead_letters import DeadLetterStore

# The application sequence the view follows; its positions are what ``wait_for`` takes.
APPLICATION = ArtifactsApplication.name
# The columns an event after ``ArtifactCreated`` may change (besides updated_at, version).
CHANGEABLE = frozenset({"status", "mime_type", "page_count", "failure_reason", "has_summary"})
# Named once: the SELECT list of both backends, in ArtifactRow's order.
SUMMARY_COLUMNS = (
    "id, filename, status, mime_type, size, page_count, failure_reason, has_summary, "
    "created_at, updated_at, tenant"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# A cursor is ~64 characters; anything much longer was not made here.
_MAX_CURSOR_LENGTH = 128
# wait_for polls the tracking record: often at first (the projection usually lags by one
# poll of its subscription), then less often.
_FIRST_POLL, _MAX_POLL = 0.005, 0.05

Position = tuple[datetime, UUID]
"""Where an artifact sits in the list: (created_at, id), newest first."""


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact, unlike ``datetime.timestamp()``."""
    if moment.tzinfo is None:  # eventsourcing's timestamps are UTC
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def encode_cursor(created_at: datetime, artifact_id: UUID) -> str:
    """The opaque cursor for "after this artifact": url-safe base64 of created_at and id."""
    raw = f"{to_micros(created_at)}.{artifact_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; raises ``InvalidCursor`` for one not made here."""
    if not cursor or len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidCursor("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        micros, dot, artifact_id = raw.partition(".")
        position = (from_micros(int(micros)), UUID(artifact_id))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise InvalidCursor("invalid cursor") from None
    # Only the exact text encode_cursor makes: no padding, spaces, signs or other spellings.
    if not dot or encode_cursor(*position) != cursor:
        raise InvalidCursor("invalid cursor")
    return position


class ArtifactListView(DeadLetterStore, ABC):
    """The artifact list, written by ``ArtifactListProjection``, read as ``ArtifactCatalog``."""

    # -- written by the projection: each returns False for an event already applied --

    def add_artifact(self, created: ArtifactCreated, tracking: Tracking) -> bool:
        """Adds the row of a new artifact (status uploaded)."""
        return self._once(tracking, lambda: self._insert_row(created, tracking))

    def update_artifact(
        self, event: Artifact.Event, changes: Mapping[str, object], tracking: Tracking
    ) -> bool:
        """Sets ``changes`` on the row of ``event``'s artifact, unless a newer event has."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise ValueError(f"not columns an event may change: {sorted(unknown)}")
        return self._once(tracking, lambda: self._update_row(event, changes, tracking))

    def remove_artifact(self, erased: ArtifactErased, tracking: Tracking) -> bool:
        """Removes the row of an erased artifact (nothing if it is gone)."""
        return self._once(tracking, lambda: self._delete_row(erased, tracking))

    def record_position(self, tracking: Tracking) -> bool:
        """Records an event that changes no row, so the position still moves on."""
        return self._once(tracking, lambda: self.advance(tracking))

    def _once(self, tracking: Tracking, write: Callable[[], None]) -> bool:
        try:
            write()
        except IntegrityError:
            # Single-row tracking refuses a position at or below the recorded one, and the
            # row change went with it. Only that case is a duplicate; anything else is not.
            if self.has_tracking_id(tracking.application_name, tracking.notification_id):
                return False
            raise
        return True

    # -- read as the ArtifactCatalog port --

    def list_artifacts(
        self,
        *,
        status: str | None,
        mime_type: str | None,
        limit: int,
        cursor: str | None,
        tenant: str | None,
    ) -> ArtifactPage:
        """See ``application.catalog.ArtifactCatalog.list_artifacts``."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        after = None if cursor is None else decode_cursor(cursor)
        # One more than asked for says whether there is a next page without counting.
        rows = self._select_rows(
            tenant=tenant, status=status, mime_type=mime_type, after=after, limit=limit + 1
        )
        items = rows[:limit]
        next_cursor = (
            encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
        )
        return ArtifactPage(items=items, next_cursor=next_cursor)

    def stored_bytes(self, tenant: str) -> int:
        """See ``application.catalog.ArtifactCatalog.stored_bytes``."""
        return self._sum_sizes(tenant)

    def created_before(self, cutoff: datetime, limit: int) -> list[UUID]:
        """See ``application.catalog.ArtifactCatalog.created_before``."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        return self._select_created_before(cutoff, limit)

    def wait_for(self, position: int, timeout: float) -> bool:
        """See ``application.catalog.ArtifactCatalog.wait_for``."""
        deadline = time.monotonic() + timeout
        interval = _FIRST_POLL
        while not self.has_tracking_id(APPLICATION, position):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, _MAX_POLL)
        return True

    # -- what each database does --

    @abstractmethod
    def _insert_row(self, created: ArtifactCreated, tracking: Tracking) -> None:
        """Inserts the row (nothing if it is there) and marks ``tracking`` (``_mark``), in
        one transaction."""

    @abstractmethod
    def _update_row(
        self, event: Artifact.Event, changes: Mapping[str, object], tracking: Tracking
    ) -> None:
        """Updates the row where its version is older than the event's, and marks
        ``tracking`` (``_mark``), in one transaction."""

    @abstractmethod
    def _delete_row(self, erased: ArtifactErased, tracking: Tracking) -> None:
        """Deletes the row, and marks ``tracking`` (``_mark``), in one transaction."""

    @abstractmethod
    def _select_rows(
        self,
        *,
        tenant: str | None,
        status: str | None,
        mime_type: str | None,
        after: Position | None,
        limit: int,
    ) -> list[ArtifactRow]:
        """Up to ``limit`` rows after ``after`` (created_at, id), newest first."""

    @abstractmethod
    def _sum_sizes(self, tenant: str) -> int:
        """The sum of the tenant's rows' sizes (0 without rows)."""

    @abstractmethod
    def _select_created_before(self, cutoff: datetime, limit: int) -> list[UUID]:
        """Up to ``limit`` ids of rows created before ``cutoff``, oldest first."""
