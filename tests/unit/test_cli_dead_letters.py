"""``artifacts dead-letters``: list the workers' dead letters, retry one (admin)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from eventsourcing.persistence import Tracking

from application.artifacts import ArtifactsApplication
from infrastructure.api.app import create_app
from infrastructure.api.dependencies import ApiOptions, ApiServices
from infrastructure.blobstore import LocalBlobStore
from infrastructure.cli import OK, UNREACHABLE, main
from infrastructure.config import Settings
from infrastructure.eventstore import tracking_recorder
from infrastructure.eventstore.dead_letters import DeadLetter, DeadLetters, DeadLetterStore
from tests.fakes import FakeCatalog, in_memory_artifacts
from tests.unit.test_cli import served

KEY, ADMIN = "plain-key-0123456789", "admin-key-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeadLetterStore]:
    store = tracking_recorder(Settings(data_dir=tmp_path), "read_model")
    letter = DeadLetter(
        position=4,
        topic="domain.artifact:Artifact.ArtifactCreated",
        originator_id=str(uuid.uuid4()),
        originator_version=0,
        error="MapperDeserialisationError: does not decode",
    )
    store.advance(Tracking(ArtifactsApplication.name, 4), [letter])
    yield store
    store.close()


@pytest.fixture
def url(tmp_path: Path, store: DeadLetterStore) -> Iterator[str]:
    artifacts = in_memory_artifacts()
    app = create_app(
        ApiServices(
            artifacts=artifacts,
            blob_store=LocalBlobStore(tmp_path / "blobs"),
            catalog=FakeCatalog(),
            options=ApiOptions(max_upload_bytes=64, api_keys=(KEY,), admin_keys=(ADMIN,)),
            dead_letters=DeadLetters({"read_worker": store}),
        )
    )
    try:
        with structlog.testing.capture_logs(), served(app) as url:
            yield url
    finally:
        artifacts.close()


def test_dead_letters_prints_one_line_each(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", url, "--api-key", ADMIN, "dead-letters"]) == OK
    (line,) = capsys.readouterr().out.splitlines()
    consumer, position, status, attempts, topic, _, error = line.split("\t")
    assert (consumer, position, status, attempts) == ("read_worker", "4", "open", "attempts=1")
    assert topic == "ArtifactCreated"
    assert error.startswith("MapperDeserialisationError")


def test_dead_letters_json_is_the_api_list(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--url", url, "--api-key", ADMIN, "dead-letters", "--consumer", "read_worker"]
    assert main([*args, "--json"]) == OK
    (item,) = json.loads(capsys.readouterr().out)
    assert item["position"] == 4


def test_retry_marks_it_for_the_worker(
    url: str, store: DeadLetterStore, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--url", url, "--api-key", ADMIN, "dead-letters", "retry", "read_worker", "4"]
    assert main(args) == OK
    assert "\tretry\t" in capsys.readouterr().out
    assert [d.position for d in store.due_for_retry()] == [4]


def test_a_plain_key_is_refused_with_exit_3(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", url, "--api-key", KEY, "dead-letters"]) == UNREACHABLE
    assert "admin_only" in capsys.readouterr().err


def test_retrying_a_position_without_a_dead_letter_exits_4(url: str) -> None:
    args = ["--url", url, "--api-key", ADMIN, "dead-letters", "retry", "read_worker", "9"]
    assert main(args) == 4
