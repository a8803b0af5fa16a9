"""``artifacts delete`` and the uploads' idempotency keys, against the API app over HTTP.

The app is the real one, its ``DELETE /artifacts/{id}`` on the real ``Eraser`` (204
erased, 202 erasing, 404 unknown, 410 for a GET of an erased artifact).
``LoseFirstAnswer`` lets the app handle an upload and then answers 503, as a proxy
that lost the answer would: the CLI's retry must get the same artifact back.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application.artifacts import ArtifactsApplication
from application.erasure import Eraser
from infrastructure.blobstore import LocalBlobStore
from infrastructure.cli import main
from tests.fakes import FakeCatalog, InMemoryKeyStore, in_memory_artifacts
from tests.unit.test_api import app_with
from tests.unit.test_cli import API_KEY, Pipeline, a_file, lines, served


def problem(status: int, error: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": "lost on the way", "status": status}, status)


class LoseFirstAnswer:
    """Records each upload's Idempotency-Key; the first upload is handled by the app, but
    its answer is replaced by a 503 (lost on the way back) when ``lose`` is set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lose = False
        self.keys: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) != ("POST", "/artifacts"):
            await self.app(scope, receive, send)
            return
        key = dict(scope["headers"]).get(b"idempotency-key")
        self.keys.append(key.decode() if key else None)
        if not self.lose:
            await self.app(scope, receive, send)
            return
        self.lose = False

        async def swallow(message: Message) -> None:
            pass

        await self.app(scope, receive, swallow)
        await problem(503, "unavailable")(scope, receive, send)


class FinishErasures:
    """Plays the run's last step: once a run asked to stop has stopped, its pending
    erasure is completed (as the workflow does after recording its cancellation)."""

    def __init__(self, artifacts: ArtifactsApplication, eraser: Eraser) -> None:
        self.artifacts = artifacts
        self.eraser = eraser
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        position = 0
        while not self._stop.wait(0.05):
            for notification in self.artifacts.recorder.select_notifications(
                start=position + 1, limit=100
            ):
                position = notification.id
                artifact_id = uuid.UUID(str(notification.originator_id))
                if notification.topic.endswith("ProcessingCancelled"):
                    self.eraser.complete_pending(artifact_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Api:
    url: str
    artifacts: ArtifactsApplication
    blobs: LocalBlobStore
    uploads: LoseFirstAnswer
    keys: InMemoryKeyStore

    def run(self, *args: str) -> int:
        return main(["--url", self.url, "--api-key", API_KEY, *args])

    def uploaded(self, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> str:
        """Uploads a file and waits until processed (a ``slow`` one: until accepted)."""
        wait = [] if "slow" in name else ["--wait"]
        assert self.run("upload", *wait, "--json", str(a_file(tmp_path, name))) == 0
        artifact_id: str = json.loads(capsys.readouterr().out)[0]["id"]
        return artifact_id


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    artifacts = in_memory_artifacts()
    blobs = LocalBlobStore(tmp_path / "blobs")
    keys = InMemoryKeyStore()
    eraser = Eraser(artifacts, blobs, keys)
    app = app_with(
        artifacts, blobs, catalog=FakeCatalog(), read_model_wait_seconds=0.01, eraser=eraser
    )
    uploads = LoseFirstAnswer(app)
    pipeline = Pipeline(artifacts)
    finisher = FinishErasures(artifacts, eraser)
    try:
        with structlog.testing.capture_logs(), served(uploads) as url:
            yield Api(url, artifacts, blobs, uploads, keys)
    finally:
        finisher.stop()
        pipeline.stop()
        artifacts.close()


# --- delete ---------------------------------------------------------------------------------


def test_delete_prints_deleted_and_the_artifact_is_erased_with_its_blob(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert api.run("upload", "--wait", "--json", str(a_file(tmp_path, "report.txt"))) == 0
    artifact_id = json.loads(capsys.readouterr().out)[0]["id"]
    location = api.artifacts.get_artifact(uuid.UUID(artifact_id)).storage_location

    code = api.run("delete", artifact_id)

    assert code == 0
    assert lines(capsys.readouterr().out) == [[artifact_id, "deleted"]]
    assert api.artifacts.get_artifact(uuid.UUID(artifact_id)).erased
    assert not (api.blobs.root / location).exists()
    assert api.keys.keys == {uuid.UUID(artifact_id): None}  # its key destroyed


def test_a_second_delete_is_a_no_op_that_still_says_deleted(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = api.uploaded(tmp_path, "a.txt", capsys)
    assert api.run("delete", artifact_id) == 0
    capsys.readouterr()

    assert api.run("delete", artifact_id) == 0
    assert lines(capsys.readouterr().out) == [[artifact_id, "deleted"]]


def test_delete_says_not_found_per_unknown_id_and_exits_4_after_deleting_the_others(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = api.uploaded(tmp_path, "a.txt", capsys)
    unknown = str(uuid.uuid4())

    code = api.run("delete", unknown, artifact_id, "not-an-id")

    assert code == 4
    assert lines(capsys.readouterr().out) == [
        [unknown, "not found"],
        [artifact_id, "deleted"],
        ["not-an-id", "not found"],
    ]
    assert api.artifacts.get_artifact(uuid.UUID(artifact_id)).erased


def test_deleting_a_run_in_flight_says_erasing_and_wait_follows_it_until_gone(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow, other = api.uploaded(tmp_path, "slow.txt", capsys), api.uploaded(tmp_path, "b", capsys)
    assert api.run("delete", "--json", slow) == 0
    assert json.loads(capsys.readouterr().out) == [{"id": slow, "status": "erasing"}]

    code = api.run("delete", "--wait", slow, other)

    assert code == 0
    assert lines(capsys.readouterr().out) == [[slow, "deleted"], [other, "deleted"]]
    assert api.artifacts.get_artifact(uuid.UUID(slow)).erased


def test_show_of_an_erased_artifact_exits_4_and_says_it_was_erased(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = api.uploaded(tmp_path, "a.txt", capsys)
    assert api.run("delete", artifact_id) == 0
    capsys.readouterr()

    assert api.run("show", artifact_id) == 4
    assert "artifact_erased" in capsys.readouterr().err


def test_delete_needs_at_least_one_id(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    assert api.run("delete") == 2
    assert "usage: artifacts delete" in capsys.readouterr().err


# --- Idempotency keys -------------------------------------------------------------------------


def test_every_file_is_uploaded_with_an_idempotency_key_of_its_own(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = a_file(tmp_path, "one.txt"), a_file(tmp_path, "two.txt")
    assert api.run("upload", str(first), str(second)) == 0
    assert api.run("upload", str(first)) == 0

    keys = api.uploads.keys
    assert len(keys) == 3
    assert all(key is not None and uuid.UUID(key).version == 4 for key in keys)
    assert len(set(keys)) == 3  # per file, and per invocation
    assert len(lines(capsys.readouterr().out)) == 3


def test_an_upload_whose_answer_was_lost_is_retried_and_creates_one_artifact(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.uploads.lose = True

    code = api.run("upload", "--json", str(a_file(tmp_path, "once.txt")))

    [result] = json.loads(capsys.readouterr().out)
    assert code == 0
    first, retry = api.uploads.keys
    assert first == retry
    created = [
        n
        for n in api.artifacts.recorder.select_notifications(start=1, limit=100)
        if n.topic.endswith("ArtifactCreated")
    ]
    assert [uuid.UUID(str(n.originator_id)) for n in created] == [uuid.UUID(result["id"])]
