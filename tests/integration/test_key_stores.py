"""The artifacts' keys, in SQLite and PostgreSQL: made once, destroyed for good."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from application.artifacts import ArtifactsApplication
from application.ports import KeyDestroyed, KeyStore
from infrastructure.config import Settings
from infrastructure.di.container import build_container
from infrastructure.eventstore import key_store
from infrastructure.eventstore.keys import SQLiteKeyStore


@pytest.fixture
def keys(settings: Settings) -> KeyStore:
    return key_store(settings)


def test_a_key_is_made_once_and_kept(keys: KeyStore) -> None:
    artifact_id = uuid.uuid4()

    key = keys.create_key(artifact_id)

    assert len(key) == 32
    assert keys.create_key(artifact_id) == key
    assert keys.key_for(artifact_id) == key
    assert keys.key_for(uuid.uuid4()) is None


def test_a_destroyed_key_is_gone_and_cannot_be_made_again(
    keys: KeyStore, settings: Settings
) -> None:
    artifact_id = uuid.uuid4()
    keys.create_key(artifact_id)

    keys.destroy_key(artifact_id)
    keys.destroy_key(artifact_id)

    assert keys.key_for(artifact_id) is None
    with pytest.raises(KeyDestroyed):
        keys.create_key(artifact_id)
    # Another process (a store of its own, no cache) sees the same.
    assert key_store(settings).key_for(artifact_id) is None


def test_no_byte_of_a_destroyed_key_is_left_in_the_sqlite_files(tmp_path: Path) -> None:
    keys = SQLiteKeyStore(tmp_path / "keys.sqlite3")
    artifact_ids = [uuid.uuid4() for _ in range(50)]
    made = {artifact_id: keys.create_key(artifact_id) for artifact_id in artifact_ids}

    keys.destroy_key(artifact_ids[7])

    files = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert made[artifact_ids[7]] not in files
    assert made[artifact_ids[8]] in files


def test_every_process_seals_events_under_the_configured_key_store(settings: Settings) -> None:
    container = build_container(settings)
    app = container[ArtifactsApplication]
    marker = f"marker-{uuid.uuid4().hex}"
    artifact_id = app.create_artifact_once(
        idempotency_key=None,
        filename=f"{marker}.txt",
        content_type="text/plain",
        size=1,
        sha256="d" * 64,
        storage_location="ab/cd/x",
    ).id

    states = [event.state for event in app.recorder.select_events(artifact_id)]

    assert states
    assert not any(marker.encode() in state for state in states)
    assert key_store(settings).key_for(artifact_id) is not None
    assert app.get_artifact(artifact_id).filename == f"{marker}.txt"
    app.close()
