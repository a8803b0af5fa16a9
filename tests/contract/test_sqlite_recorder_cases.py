"""eventsourcing's own shared recorder test cases, run on the project's SQLite recorder.

``SubscribableSQLiteApplicationRecorder`` adds a polling ``subscribe()`` to the library's
SQLite recorder; these are the cases the library runs against every recorder it ships, so
the subscription is held to the library's contract and not only to ours. (unittest
TestCases: pytest collects them.)
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests import persistence

from infrastructure.eventstore.sqlite import SubscribableSQLiteApplicationRecorder


class TestSubscribableSQLiteApplicationRecorder(
    persistence.ApplicationRecorderTestCase[SubscribableSQLiteApplicationRecorder]
):
    def setUp(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="sqlite-recorder-"))
        self._datastores: list[SQLiteDatastore] = []

    def tearDown(self) -> None:
        # The library's concurrency case stops its reader threads without joining them;
        # closing a connection while a reader is inside SQLite crashes the interpreter.
        for thread in threading.enumerate():
            if thread.name.endswith("(read_continuously)"):
                thread.join(timeout=10)
        for datastore in self._datastores:
            datastore.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def create_recorder(self) -> SubscribableSQLiteApplicationRecorder:
        # A file, as in production: an in-memory database would serialise every reader.
        datastore = SQLiteDatastore(db_name=str(self._dir / "events.sqlite3"), lock_timeout=30)
        self._datastores.append(datastore)
        recorder = SubscribableSQLiteApplicationRecorder(datastore)
        recorder.poll_interval = 0.01
        recorder.create_table()
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()
