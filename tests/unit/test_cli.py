"""The ``artifacts`` CLI against the real API app, served by uvicorn on a free port.

The application runs in memory; a stand-in for the pipeline (``Pipeline`` below) records
results through it from another thread, as the Temporal workflow would, so ``--wait``
watches real status changes over real HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from application.artifacts import ArtifactsApplication
from application.catalog import ArtifactPage, ArtifactRow
from application.ports import ContentFacts, SummaryCandidate
from infrastructure.blobstore import LocalBlobStore
from infrastructure.cli import main
from infrastructure.cli.progress import ProgressLine, bar
from tests.fakes import FakeCatalog, in_memory_artifacts
from tests.support import free_port
from tests.unit.test_api import app_with

API_KEY = "cli-test-key"
SUMMARY = SummaryCandidate(
    text="A short summary.", source="lexrank", model="lexrank", pipeline_version="1"
)


class RequireApiKey:
    """Stands in for the API's key check: 401 unless ``Authorization: Bearer <key>``."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key
        self.seen: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization")
            self.seen.append(authorization.decode() if authorization else None)
            if authorization != f"Bearer {self.key}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b'{"error":"unauthorized"}'})
                return
        await self.app(scope, receive, send)


class Pipeline:
    """Plays pipeline_worker + workflow: each new run is recorded processed or failed.

    Files whose name contains ``broken`` fail with ``corrupt``; ``slow`` ones stay
    processing until cancelled. ``paused`` holds all work.
    """

    def __init__(self, artifacts: ArtifactsApplication) -> None:
        self.artifacts = artifacts
        self.paused = False
        self._position = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(0.05):
            if self.paused:
                continue
            for notification in self.artifacts.recorder.select_notifications(
                start=self._position + 1, limit=100
            ):
                self._position = notification.id
                artifact_id = uuid.UUID(str(notification.originator_id))
                if notification.topic.endswith(("ArtifactCreated", "ReprocessingRequested")):
                    self._process(artifact_id)
                elif notification.topic.endswith("CancellationRequested"):
                    run = self.artifacts.get_artifact(artifact_id).run
                    self.artifacts.record_processing_cancelled(
                        artifact_id, run=run, reason="cancelled", message="on request"
                    )

    def _process(self, artifact_id: uuid.UUID) -> None:
        artifact = self.artifacts.get_artifact(artifact_id)
        run = artifact.run
        self.artifacts.record_processing_started(artifact_id, run=run, workflow_id="wf")
        if "slow" in artifact.filename:
            return
        if "broken" in artifact.filename:
            self.artifacts.record_processing_failure(
                artifact_id, run=run, reason="corrupt", message="not a real PDF"
            )
            return
        facts = ContentFacts(
            mime_type="text/plain", kind="text", page_count=None, char_count=5, details={}
        )
        self.artifacts.record_processing_result(artifact_id, run=run, facts=facts, summary=SUMMARY)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Api:
    """The API as the CLI reaches it, and its parts the tests look behind."""

    url: str
    artifacts: ArtifactsApplication
    catalog: FakeCatalog
    keys: RequireApiKey
    pipeline: Pipeline

    def run(self, *args: str) -> int:
        """``artifacts --url URL --api-key KEY ARGS...``"""
        return main(["--url", self.url, "--api-key", API_KEY, *args])


@contextlib.contextmanager
def served(app: ASGIApp) -> Iterator[str]:
    """Serves ``app`` with uvicorn on a free port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        assert thread.is_alive(), "uvicorn stopped while starting"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def api(tmp_path: Path, catalog: FakeCatalog) -> Iterator[Api]:
    artifacts = in_memory_artifacts()
    app = app_with(
        artifacts,
        LocalBlobStore(tmp_path / "blobs"),
        max_upload_bytes=64 * 1024,
        catalog=catalog,
        read_model_wait_seconds=0.01,
    )
    keys = RequireApiKey(app, API_KEY)
    pipeline = Pipeline(artifacts)
    try:
        # The server runs in this process: its logs are kept out of the CLI's stdout.
        with structlog.testing.capture_logs(), served(keys) as url:
            yield Api(url, artifacts, catalog, keys, pipeline)
    finally:
        pipeline.stop()
        artifacts.close()


def a_file(tmp_path: Path, name: str, content: bytes = b"hello, world\n") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def lines(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


# --- upload ---------------------------------------------------------------------------------


def test_upload_prints_each_artifact_id_and_status(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.pipeline.paused = True
    first, second = a_file(tmp_path, "one.txt"), a_file(tmp_path, "two.txt", b"2" * 1000)

    code = api.run("upload", str(first), str(second))

    out = capsys.readouterr()
    assert code == 0
    assert [row[1:] for row in lines(out.out)] == [
        ["uploaded", str(first)],
        ["uploaded", str(second)],
    ]
    stored = api.artifacts.get_artifact(uuid.UUID(lines(out.out)[1][0]))
    assert (stored.filename, stored.size) == ("two.txt", 1000)
    assert out.err == ""  # not a terminal: no progress drawn


def test_upload_json_is_one_object_per_file(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.pipeline.paused = True
    path = a_file(tmp_path, "notes.txt")

    code = api.run("upload", "--json", str(path))

    [result] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["file"] == str(path)
    assert result["status"] == "uploaded"
    assert result["links"]["self"] == f"/artifacts/{result['id']}"


def test_upload_streams_the_exact_bytes_and_a_filename_that_needs_escaping(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.pipeline.paused = True
    content = bytes(range(256)) * 200  # several chunks, every byte value
    path = a_file(tmp_path, 'a "quoted" naïve name.bin', content)

    assert api.run("upload", "--json", str(path)) == 0

    [result] = json.loads(capsys.readouterr().out)
    stored = api.artifacts.get_artifact(uuid.UUID(result["id"]))
    assert stored.size == len(content)
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert stored.filename == "a %22quoted%22 naïve name.bin"  # as browsers send it


def test_upload_wait_exits_0_once_every_file_is_processed(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = a_file(tmp_path, "a.txt"), a_file(tmp_path, "b.txt")

    code = api.run("upload", "--wait", str(first), str(second))

    assert code == 0
    assert [row[1:] for row in lines(capsys.readouterr().out)] == [
        ["processed", str(first)],
        ["processed", str(second)],
    ]


def test_upload_wait_exits_1_when_a_file_fails_and_says_why(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = a_file(tmp_path, "good.txt"), a_file(tmp_path, "broken.pdf")

    code = api.run("upload", "--wait", str(good), str(bad))

    assert code == 1
    assert [row[1:] for row in lines(capsys.readouterr().out)] == [
        ["processed", str(good)],
        ["failed", str(bad), "corrupt: not a real PDF"],
    ]


def test_upload_wait_json_prints_the_final_views(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = api.run("upload", "--wait", "--json", str(a_file(tmp_path, "a.txt")))

    [view] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert view["status"] == "processed"
    assert view["summary"]["text"] == SUMMARY.text
    assert [entry["type"] for entry in view["history"]][-1] == "SummaryCandidateAdded"


def test_upload_wait_gives_up_after_the_timeout_with_exit_1(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.pipeline.paused = True

    code = api.run("upload", "--wait", "--timeout", "0.3", str(a_file(tmp_path, "a.txt")))

    out = capsys.readouterr()
    assert code == 1
    assert lines(out.out)[0][1] == "uploaded"
    assert "still uploaded after" in out.err


def test_a_refused_upload_is_reported_and_exits_1_while_the_others_go_through(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.pipeline.paused = True
    empty, fine = a_file(tmp_path, "empty.txt", b""), a_file(tmp_path, "fine.txt")

    code = api.run("upload", str(empty), str(fine))

    out = capsys.readouterr()
    assert code == 1
    refused, uploaded = lines(out.out)
    assert refused[:3] == ["-", "refused", str(empty)]
    assert uploaded[1:] == ["uploaded", str(fine)]
    assert f"artifacts: {empty}: " in out.err


def test_a_missing_file_is_a_usage_error_and_nothing_is_uploaded(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = api.run("upload", str(a_file(tmp_path, "there.txt")), str(tmp_path / "missing.txt"))

    assert code == 2
    assert "cannot read" in capsys.readouterr().err
    assert api.artifacts.recorder.max_notification_id() in (None, 0)


# --- show -------------------------------------------------------------------------------


def uploaded_and_processed(api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert api.run("upload", "--wait", "--json", str(a_file(tmp_path, "report.txt"))) == 0
    artifact_id: str = json.loads(capsys.readouterr().out)[0]["id"]
    return artifact_id


def test_show_describes_the_artifact_its_summary_and_history(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = uploaded_and_processed(api, tmp_path, capsys)

    code = api.run("show", artifact_id)

    out = capsys.readouterr().out
    assert code == 0
    assert f"id:           {artifact_id}" in out
    assert "status:       processed" in out
    assert f"summary:      {SUMMARY.text}" in out
    assert (
        f"temporal:     http://127.0.0.1:8233/namespaces/default/workflows/artifact-{artifact_id}"
        in out
    )
    assert out.index("ArtifactCreated") < out.index("SummaryCandidateAdded")


def test_show_json_is_the_api_view(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = uploaded_and_processed(api, tmp_path, capsys)

    assert api.run("show", "--json", artifact_id) == 0

    view = json.loads(capsys.readouterr().out)
    assert view["id"] == artifact_id
    assert view["status"] == "processed"
    assert set(view) >= {"results", "summary", "failure", "history", "links", "workflow_id"}


@pytest.mark.parametrize("artifact_id", [str(uuid.uuid4()), "not-an-id"])
def test_show_exits_4_for_an_unknown_artifact(
    api: Api, artifact_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = api.run("show", artifact_id)

    assert code == 4
    assert "not found" in capsys.readouterr().err


# --- list -------------------------------------------------------------------------------


def summary(name: str, status: str = "processed") -> ArtifactRow:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return ArtifactRow(
        id=uuid.uuid4(),
        filename=name,
        status=status,
        mime_type="application/pdf",
        size=2048,
        page_count=3,
        failure_reason=None,
        has_summary=True,
        created_at=now,
        updated_at=now,
    )


def test_list_prints_one_line_per_artifact_and_passes_the_filters_on(
    api: Api, catalog: FakeCatalog, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [summary("a.pdf"), summary("b.pdf")]
    catalog.pages = {None: ArtifactPage(items=items, next_cursor=None)}

    code = api.run(
        "list", "--status", "processed", "--mime-type", "application/pdf", "--limit", "5"
    )

    assert code == 0
    assert lines(capsys.readouterr().out) == [
        [str(item.id), "processed", "application/pdf", "2.0 KiB", item.filename] for item in items
    ]
    assert catalog.listed == [
        {
            "status": "processed",
            "mime_type": "application/pdf",
            "limit": 5,
            "cursor": None,
            "tenant": None,
        }
    ]


def test_list_follows_the_pages_up_to_the_limit(
    api: Api, catalog: FakeCatalog, capsys: pytest.CaptureFixture[str]
) -> None:
    first = [summary(f"{n}.pdf") for n in range(200)]
    catalog.pages = {
        None: ArtifactPage(items=first, next_cursor="c1"),
        "c1": ArtifactPage(items=[summary("last.pdf")], next_cursor="c2"),
    }

    assert api.run("list", "--json", "--limit", "201") == 0

    listed = json.loads(capsys.readouterr().out)
    assert [item["filename"] for item in listed][-2:] == ["199.pdf", "last.pdf"]
    assert [(call["limit"], call["cursor"]) for call in catalog.listed] == [(200, None), (1, "c1")]


@pytest.mark.parametrize(
    "args", [["list", "--status", "lost"], ["list", "--limit", "0"], ["nope"], []]
)
def test_bad_arguments_exit_2_with_the_usage(
    api: Api, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert api.run(*args) == 2
    assert "usage: artifacts" in capsys.readouterr().err


def test_help_documents_the_exit_codes_and_the_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0

    out = capsys.readouterr().out
    for documented in ("ARTIFACTS_URL", "ARTIFACTS_API_KEY", "exit codes:", "4  no such artifact"):
        assert documented in out


# --- reprocess --------------------------------------------------------------------------


def test_reprocess_wait_follows_the_new_run_until_processed(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = uploaded_and_processed(api, tmp_path, capsys)

    code = api.run("reprocess", "--wait", "--json", artifact_id)

    [view] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (view["run"], view["status"]) == (1, "processed")


def test_reprocessing_while_a_run_is_in_progress_is_refused_with_exit_1(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.pipeline.paused = True
    assert api.run("upload", "--json", str(a_file(tmp_path, "a.txt"))) == 0
    artifact_id = json.loads(capsys.readouterr().out)[0]["id"]
    api.artifacts.record_processing_started(uuid.UUID(artifact_id), run=0, workflow_id="wf")

    code = api.run("reprocess", artifact_id)

    assert code == 1
    assert "reprocessing_not_allowed" in capsys.readouterr().err


# --- cancel -----------------------------------------------------------------------------


def test_cancel_wait_follows_the_run_until_cancelled(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert api.run("upload", "--json", str(a_file(tmp_path, "slow.txt"))) == 0
    artifact_id = json.loads(capsys.readouterr().out)[0]["id"]

    code = api.run("cancel", "--wait", "--json", artifact_id)

    [view] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (view["status"], view["failure"]["reason"]) == ("cancelled", "cancelled")


def test_cancelling_an_artifact_with_an_outcome_is_refused_with_exit_1(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = uploaded_and_processed(api, tmp_path, capsys)

    code = api.run("cancel", artifact_id)

    assert code == 1
    assert "cancellation_not_allowed" in capsys.readouterr().err


def test_a_cancelled_artifact_can_be_reprocessed(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert api.run("upload", "--json", str(a_file(tmp_path, "slow.txt"))) == 0
    artifact_id = json.loads(capsys.readouterr().out)[0]["id"]
    assert api.run("cancel", "--wait", artifact_id) == 0
    capsys.readouterr()

    assert api.run("reprocess", "--json", artifact_id) == 0
    assert json.loads(capsys.readouterr().out)[0]["run"] == 1


# --- Connection and credentials ---------------------------------------------------------


def test_the_api_key_and_url_come_from_the_environment(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARTIFACTS_URL", api.url)
    monkeypatch.setenv("ARTIFACTS_API_KEY", API_KEY)

    assert main(["list"]) == 0
    assert api.keys.seen == [f"Bearer {API_KEY}"]


def test_options_after_the_command_override_the_environment(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFACTS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ARTIFACTS_API_KEY", "stale")

    assert main(["list", "--url", api.url, "--api-key", API_KEY]) == 0


def test_a_rejected_api_key_exits_3(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--url", api.url, "--api-key", "wrong", "list"])

    assert code == 3
    assert "401" in capsys.readouterr().err


def test_an_unreachable_server_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--url", f"http://127.0.0.1:{free_port()}", "show", str(uuid.uuid4())])

    assert code == 3
    assert "cannot reach" in capsys.readouterr().err


# --- Progress ---------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_the_share_done_and_the_sizes() -> None:
    assert bar("a.pdf", 512 * 1024, 1024 * 1024) == (
        f"a.pdf [{'#' * 15}{'.' * 15}]  50%  512.0 KiB / 1.0 MiB"
    )
    assert bar("empty", 0, 0).startswith(f"empty [{'#' * 30}] 100%")


def test_progress_is_redrawn_in_place_on_a_terminal_and_ends_with_a_newline() -> None:
    terminal = Terminal()
    line = ProgressLine(terminal)

    line.draw("uploading a long name", force=True)
    line.done("done")

    assert terminal.getvalue() == "\ruploading a long name\rdone" + " " * 17 + "\n"


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream)

    line.draw("uploading", force=True)
    line.done("done")

    assert stream.getvalue() == ""
