"""PostgreSQL tracking with dead letters: `<consumer>_dead_letters` by `<consumer>_tracking`.

The consumers share POSTGRES_SCHEMA, so the table is named after the consumer, like its
tracking table; one transaction covers both (``dead_letters.DeadLetterStore``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composed, Identifier

from infrastructure.eventstore.dead_letters import CREATE, DeadLetter, DeadLetterStore

# As eventsourcing's own PostgreSQL recorders do: a connection the server dropped fails
# once and is replaced. A write retried after a commit that landed is harmless: inserts do
# nothing on conflict, status changes set the same value again, and a position already
# recorded is the IntegrityError the consumers expect.
_reconnecting = retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)


class PostgresDeadLetterTracking(DeadLetterStore, PostgresTrackingRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        name = self.tracking_table_name.removesuffix("_tracking") + "_dead_letters"
        self.check_identifier_length(name)
        self._dead_letter_table = SQL("{}.{}").format(
            Identifier(datastore.schema), Identifier(name)
        )
        self.sql_create_statements.append(self._sql(CREATE))

    @_reconnecting
    def advance(self, tracking: Tracking, letters: Sequence[DeadLetter] = ()) -> None:
        super().advance(tracking, letters)

    @_reconnecting
    def dead_letters(self) -> list[DeadLetter]:
        return super().dead_letters()

    @_reconnecting
    def dead_letter(self, position: int) -> DeadLetter:
        return super().dead_letter(position)

    @_reconnecting
    def mark_for_retry(self, position: int) -> DeadLetter:
        return super().mark_for_retry(position)

    @_reconnecting
    def retry_failed(self, position: int, error: str) -> None:
        super().retry_failed(position, error)

    def _sql(self, statement: str) -> Composed:
        # The statements are this package's constants; only the table is composed in.
        return SQL(statement).format(table=self._dead_letter_table)
