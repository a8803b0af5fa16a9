"""SQLite persistence with a subscription, so ``ApplicationSubscription`` works on it.

eventsourcing's SQLite recorder has no ``subscribe()``. SQLite has no push channel
either, so the subscription here polls: it asks for events after its position, and
when there are none it waits ``SQLITE_POLL_INTERVAL`` seconds (default 0.1) before
asking again. That interval bounds the extra latency between an upload and its
workflow start. Polling is by rowid, which SQLite assigns in commit order (one writer
at a time), so a reader never skips an event that commits later with a lower id.

Use it as the persistence module: ``PERSISTENCE_MODULE=infrastructure.eventstore.sqlite:Factory``.

``SQLiteDeadLetterTracking`` is a consumer's tracking recorder with a ``dead_letters`` table
in the same file, so that a dead letter and its position commit together
(``dead_letters.DeadLetterStore``).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Sequence

from eventsourcing import sqlite
from eventsourcing.persistence import ApplicationRecorder, Notification, Subscription

from infrastructure.eventstore.dead_letters import CREATE, DeadLetterStore

DEFAULT_POLL_INTERVAL = 0.1
DEAD_LETTER_TABLE = "dead_letters"
_PYFORMAT = re.compile(r"%\((\w+)\)s")


class PollingSubscription(Subscription[sqlite.SQLiteApplicationRecorder]):
    """Yields notifications after ``gt``, then blocks, polling for new ones until stopped."""

    def __init__(
        self,
        recorder: sqlite.SQLiteApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        batch_size: int = 500,
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._buffer: deque[Notification] = deque()
        self._stopping = threading.Event()

    def stop(self) -> None:
        super().stop()
        self._stopping.set()

    def __next__(self) -> Notification:
        while not self._buffer:
            if self._has_been_stopped:
                raise StopIteration
            batch = self._recorder.select_notifications(
                start=self._last_notification_id or 0,
                limit=self._batch_size,
                topics=self._topics,
                inclusive_of_start=False,
            )
            if batch:
                self._buffer.extend(batch)
                self._last_notification_id = batch[-1].id
            elif self._stopping.wait(self._poll_interval):
                raise StopIteration
        if self._has_been_stopped:
            raise StopIteration
        return self._buffer.popleft()


class SubscribableSQLiteApplicationRecorder(sqlite.SQLiteApplicationRecorder):
    poll_interval: float = DEFAULT_POLL_INTERVAL

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(self, gt=gt, topics=topics, poll_interval=self.poll_interval)


class Factory(sqlite.SQLiteFactory):
    """eventsourcing's SQLite factory, whose application recorder can be subscribed to."""

    SQLITE_POLL_INTERVAL = "SQLITE_POLL_INTERVAL"
    application_recorder_class = SubscribableSQLiteApplicationRecorder

    def application_recorder(self) -> ApplicationRecorder:
        recorder = super().application_recorder()
        interval = self.env.get(self.SQLITE_POLL_INTERVAL)
        if interval and isinstance(recorder, SubscribableSQLiteApplicationRecorder):
            recorder.poll_interval = float(interval)
        return recorder


class SQLiteDeadLetterTracking(DeadLetterStore, sqlite.SQLiteTrackingRecorder):
    # The statements in SQLite's dialect, made once each.
    _statements: dict[str, str] = {}

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), self._sql(CREATE)]

    @classmethod
    def _sql(cls, statement: str) -> str:
        if statement not in cls._statements:
            named = _PYFORMAT.sub(r":\1", statement)
            cls._statements[statement] = named.format(table=DEAD_LETTER_TABLE)
        return cls._statements[statement]
