"""What crosses Temporal names no file and quotes no content, and an erasure asked for while
a run is in flight completes once the run has stopped, leaving no blob of the artifact."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToJson
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from application.erasure import Erasure, by_tenant
from domain.artifact import ArtifactStatus
from tests import corpus
from tests.workflow.harness import Harness
from tests.workflow.test_cancellation import EndlessExtract

DEADLINE = 10.0  # seconds of wall time a wait for a stand-in may take
MARKER = "zqx-personal-7f3a"


@pytest.fixture
def harness(time_skipping_env: WorkflowEnvironment) -> Iterator[Harness]:
    harness = Harness(time_skipping_env.client)
    yield harness
    harness.close()


async def test_a_runs_history_holds_neither_its_filename_nor_its_summary(
    harness: Harness, tmp_path: Path
) -> None:
    # The summary is the text's first line: the marker is in it, and in the filename.
    text = f"{MARKER} opens this text.\nA second line follows it.\n"
    content = corpus.text_file(tmp_path, text, encoding="utf-8").read_bytes()
    request = harness.upload(content, filename=f"{MARKER}.txt")

    async with harness.worker():
        handle = await harness.start(request)
        outcome = await handle.result()
        history = await handle.fetch_history()
        memo = await (await handle.describe()).memo()

    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert outcome.has_summary
    assert artifact.summary is not None
    assert MARKER in artifact.summary["text"]
    assert MARKER in artifact.filename
    # Every payload of every event, decoded (Temporal's JSON payloads are base64 there).
    events = [json.loads(MessageToJson(event)) for event in history.events]
    payloads = [_decoded(value) for event in events for value in _payload_data(event)]
    assert payloads
    assert not [payload for payload in payloads if MARKER in payload]
    assert MARKER not in json.dumps(events)
    assert MARKER not in json.dumps(memo)
    # The stored summary was read back and deleted: only the outputs of the run are left.
    assert set(harness.blobs.blobs) == {
        request.storage_location,
        *harness.artifacts.blob_locations(request.artifact_id),
    }


async def test_an_erasure_asked_for_mid_extraction_completes_when_the_run_stops(
    harness: Harness, tmp_path: Path
) -> None:
    request = harness.upload(
        corpus.text_file(tmp_path, "Some text.\n", encoding="utf-8").read_bytes()
    )
    extract = EndlessExtract()

    async with harness.worker(extract=extract.extract):
        handle = await harness.start(request)
        await asyncio.wait_for(extract.started.wait(), DEADLINE)
        erasure = harness.eraser.erase(request.artifact_id, by=by_tenant("default"))
        # The pipeline worker's part: the CancellationRequested the erasure recorded.
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()

    assert erasure is Erasure.PENDING
    assert isinstance(ended.value.cause, CancelledError)
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.status is ArtifactStatus.ERASED
    assert artifact.erasure == {"by": "tenant:default", "reason": "request"}
    assert harness.blobs.blobs == {}
    assert harness.keys.key_for(request.artifact_id) is None


def _payload_data(node: object) -> Iterator[str]:
    """The ``data`` of every payload in a history event's JSON."""
    if isinstance(node, dict):
        if "metadata" in node and "data" in node:
            yield str(node["data"])
        for value in node.values():
            yield from _payload_data(value)
    elif isinstance(node, list):
        for value in node:
            yield from _payload_data(value)


def _decoded(data: str) -> str:
    return base64.b64decode(data).decode("utf-8", errors="replace")
