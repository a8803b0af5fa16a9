"""eventsourcing's own shared recorder test cases, run on the project's SQLite recorder.

``SubscribableSQLiteApplicationRecorder`` adds a polling ``subscribe()`` to the library's
SQLite recorder; these are the cases the library runs against every recorder it ships, so
the subscription is held to the library's contract and not only to ours. (unittest
TestCases: pytest collects them.)
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import types
from pathlib import Path

from eventsourcing.sqlite import SQLiteDatastore

from infrastructure.eventstore.sqlite import SubscribableSQLiteApplicationRecorder


def _without_pycryptodome() -> None:
    """Lets ``eventsourcing.tests.persistence`` import when pycryptodome is not installed.

    That module imports ``AESCipher`` (eventsourcing's ``crypto`` extra) at the top for its
    factory cases, which are not run here; the recorder cases never touch it. With the
    package installed this does nothing.
    """
    if importlib.util.find_spec("Crypto") is not None:
        return
    names = ["Crypto", "Crypto.Cipher", "Crypto.Cipher._mode_gcm", "Crypto.Cipher.AES"]
    modules = {name: types.ModuleType(name) for name in names}
    modules["Crypto.Cipher"].AES = modules["Crypto.Cipher.AES"]  # type: ignore[attr-defined]
    modules["Crypto.Cipher._mode_gcm"].GcmMode = object  # type: ignore[attr-defined]
    modules["Crypto.Cipher.AES"].key_size = (16, 24, 32)  # type: ignore[attr-defined]
    for name, module in modules.items():
        sys.modules.setdefault(name, module)


_without_pycryptodome()
from eventsourcing.tests import persistence  # noqa: E402 - needs the lines above first


class TestSubscribableSQLiteApplicationRecorder(
    persistence.ApplicationRecorderTestCase[SubscribableSQLiteApplicationRecorder]
):
    def setUp(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="sqlite-recorder-"))
        self._datastores: list[SQLiteDatastore] = []

    def tearDown(self) -> None:
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
