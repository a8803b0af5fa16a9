"""Dead letters: stored events a consumer could not handle, kept beside its position.

A consumer (the pipeline worker, the read worker) that meets an event it cannot handle for a
reason of the event's own (it does not decode, it cannot be turned into a workflow start,
Temporal refuses it for good) records a ``DeadLetter`` and moves on, so one bad event never
blocks the events behind it. The dead letter is written in the same transaction as the
position that passes it: after a crash either both are there or neither is (and the event
is delivered again).

``DeadLetterStore`` is that write, mixed into a consumer's tracking recorder (the pipeline
worker's own, the read model's view), with what an operator does next: list them, mark one
for retry once its cause is fixed. The consumer then handles that event again, without
moving its position back; success resolves the dead letter, failure keeps it open with the
new error and one more attempt. The tables are in ``dead_letter_tables.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from eventsourcing.persistence import Tracking, TrackingRecorder


class DeadLetterStatus(StrEnum):
    OPEN = "open"
    """Recorded; waiting for its cause to be fixed."""
    RETRY = "retry"
    """Marked for retry: the consumer will handle the event again."""
    RESOLVED = "resolved"
    """Handled on a retry."""


@dataclass(frozen=True)
class DeadLetter:
    position: int
    """The event's notification id in the application sequence."""
    topic: str
    originator_id: str
    originator_version: int
    error: str
    status: DeadLetterStatus = DeadLetterStatus.OPEN
    attempts: int = 1
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime | None = None


class DeadLetterNotFound(LookupError):  # noqa: N818 - a domain word
    """No dead letter at that position (of that consumer)."""


class UnknownConsumer(LookupError):  # noqa: N818 - a domain word
    """No consumer of that name keeps dead letters."""


@dataclass(frozen=True)
class Redelivery(Tracking):
    """The position of a dead letter being handled again: a write made with it resolves that
    dead letter (when ``resolves``) instead of recording a position, which stays where it is.
    """

    resolves: bool = True


# One dialect for both databases: psycopg's named parameters, which the SQLite store turns
# into its own; {table} is the consumer's dead-letter table.
CREATE = (
    "CREATE TABLE IF NOT EXISTS {table} ("
    "position bigint PRIMARY KEY, "
    "topic text NOT NULL, "
    "originator_id text NOT NULL, "
    "originator_version bigint NOT NULL, "
    "error text NOT NULL, "
    "status text NOT NULL, "
    "attempts integer NOT NULL, "
    "recorded_at text NOT NULL, "
    "updated_at text NOT NULL)"
)
INSERT = (
    "INSERT INTO {table} (position, topic, originator_id, originator_version, error, status, "
    "attempts, recorded_at, updated_at) VALUES (%(position)s, %(topic)s, %(originator_id)s, "
    "%(originator_version)s, %(error)s, %(status)s, %(attempts)s, %(at)s, %(at)s) "
    "ON CONFLICT (position) DO NOTHING"
)
SELECT = (
    "SELECT position, topic, originator_id, originator_version, error, status, attempts, "
    "recorded_at, updated_at FROM {table} ORDER BY position"
)
SELECT_ONE = (
    "SELECT position, topic, originator_id, originator_version, error, status, attempts, "
    "recorded_at, updated_at FROM {table} WHERE position = %(position)s"
)
SET_STATUS = (
    "UPDATE {table} SET status = %(status)s, updated_at = %(at)s "
    "WHERE position = %(position)s AND status <> %(resolved)s"
)
RETRY_FAILED = (
    "UPDATE {table} SET status = %(status)s, error = %(error)s, attempts = attempts + 1, "
    "updated_at = %(at)s WHERE position = %(position)s AND status = %(retry)s"
)


class DeadLetterStore(TrackingRecorder, ABC):
    """A tracking recorder that keeps its consumer's dead letters in the same database."""

    def advance(self, tracking: Tracking, letters: Sequence[DeadLetter] = ()) -> None:
        """Records ``tracking`` and the dead letters it passes, in one transaction.

        ``tracking`` may be a ``Redelivery``: then the dead letter at its position is
        resolved instead, and the recorded position does not move.
        """
        with self._write() as c:
            for letter in letters:
                self._execute(c, INSERT, _params(letter))
            self._mark(c, tracking)

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, in position order (resolved ones too: they are the record)."""
        with self._read() as c:
            return [_letter(row) for row in self._fetch(c, SELECT, {})]

    def dead_letter(self, position: int) -> DeadLetter:
        with self._read() as c:
            rows = self._fetch(c, SELECT_ONE, {"position": position})
        if not rows:
            raise DeadLetterNotFound(f"no dead letter at position {position}")
        return _letter(rows[0])

    def mark_for_retry(self, position: int) -> DeadLetter:
        """Asks the consumer to handle the event at ``position`` again; a resolved one stays."""
        with self._write() as c:
            self._execute(c, SET_STATUS, _status(position, DeadLetterStatus.RETRY))
        return self.dead_letter(position)

    def due_for_retry(self) -> list[DeadLetter]:
        return [d for d in self.dead_letters() if d.status is DeadLetterStatus.RETRY]

    def count_open(self) -> int:
        return sum(d.status is not DeadLetterStatus.RESOLVED for d in self.dead_letters())

    def retry_failed(self, position: int, error: str) -> None:
        """The retry failed: open again, with the new error and one more attempt."""
        params = {
            **_status(position, DeadLetterStatus.OPEN),
            "error": error,
            "retry": DeadLetterStatus.RETRY.value,
        }
        with self._write() as c:
            self._execute(c, RETRY_FAILED, params)

    def _mark(self, c: Any, tracking: Tracking) -> None:
        """Within a write: records ``tracking``, or resolves a ``Redelivery``'s dead letter."""
        if isinstance(tracking, Redelivery):
            if tracking.resolves:
                params = _status(tracking.notification_id, DeadLetterStatus.RESOLVED)
                self._execute(c, SET_STATUS, params)
        else:
            self._record_tracking(c, tracking)

    # -- on eventsourcing's datastores (SQLite's and PostgreSQL's share these calls) --

    # Both given by eventsourcing's tracking recorders, which each store also derives from.
    datastore: Any
    _insert_tracking: Callable[[Any, Tracking], None]

    def close(self) -> None:
        """Closes the store's database connections."""
        self.datastore.close()

    def _write(self) -> AbstractContextManager[Any]:
        """A transaction that commits: a cursor."""
        transaction: AbstractContextManager[Any] = self.datastore.transaction(commit=True)
        return transaction

    def _read(self) -> AbstractContextManager[Any]:
        """A read-only transaction: a cursor."""
        transaction: AbstractContextManager[Any] = self.datastore.transaction(commit=False)
        return transaction

    def _execute(self, c: Any, statement: str, params: Mapping[str, object]) -> None:
        """Runs one of the statements above on ``c``."""
        c.execute(self._sql(statement), params)

    def _fetch(
        self, c: Any, statement: str, params: Mapping[str, object]
    ) -> list[Mapping[str, Any]]:
        """Runs one of the SELECTs above on ``c``; its rows by column name."""
        c.execute(self._sql(statement), params)
        return list(c.fetchall())

    def _record_tracking(self, c: Any, tracking: Tracking) -> None:
        """eventsourcing's own tracking insert, on ``c``."""
        self._insert_tracking(c, tracking)

    # -- what each database does --

    @abstractmethod
    def _sql(self, statement: str) -> Any:
        """One of the statements above in the database's dialect, for its dead-letter table."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _status(position: int, status: DeadLetterStatus) -> dict[str, object]:
    return {
        "position": position,
        "status": status.value,
        "resolved": DeadLetterStatus.RESOLVED.value,
        "at": _now(),
    }


def _params(letter: DeadLetter) -> dict[str, object]:
    return {
        "position": letter.position,
        "topic": letter.topic,
        "originator_id": letter.originator_id,
        "originator_version": letter.originator_version,
        "error": letter.error,
        "status": letter.status.value,
        "attempts": letter.attempts,
        # ISO 8601 in UTC: exact, sortable, and the same text on both databases.
        "at": letter.recorded_at.astimezone(UTC).isoformat(),
    }


def _letter(row: Mapping[str, Any]) -> DeadLetter:
    return DeadLetter(
        position=int(row["position"]),
        topic=row["topic"],
        originator_id=row["originator_id"],
        originator_version=int(row["originator_version"]),
        error=row["error"],
        status=DeadLetterStatus(row["status"]),
        attempts=int(row["attempts"]),
        recorded_at=datetime.fromisoformat(row["recorded_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


class DeadLetters:
    """Every consumer's dead letters, by consumer name: what the admin API reads and marks."""

    def __init__(
        self, stores: Mapping[str, DeadLetterStore], *, closes: Sequence[Callable[[], None]] = ()
    ) -> None:
        """``closes``: what closes the connections opened for this (the owner calls them)."""
        self._stores = dict(stores)
        self.closes = list(closes)

    @property
    def consumers(self) -> list[str]:
        return sorted(self._stores)

    def list(self, consumer: str | None = None) -> Iterator[tuple[str, DeadLetter]]:
        """(consumer, dead letter) for ``consumer``, or for every one; by consumer, position."""
        for name in [consumer] if consumer is not None else self.consumers:
            for letter in self._store(name).dead_letters():
                yield name, letter

    def retry(self, consumer: str, position: int) -> DeadLetter:
        """Marks the dead letter for retry (``DeadLetterNotFound``, ``UnknownConsumer``)."""
        store = self._store(consumer)
        store.dead_letter(position)  # raises when there is none
        return store.mark_for_retry(position)

    def _store(self, consumer: str) -> DeadLetterStore:
        try:
            return self._stores[consumer]
        except KeyError:
            raise UnknownConsumer(f"no consumer {consumer!r} keeps dead letters") from None
