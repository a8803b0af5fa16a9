"""ProcessArtifactWorkflow on office, web and e-mail documents, on Temporal's time-skipping
test server with the real activities: each format ends ``processed`` with its structured
outputs and a summary; hostile and legacy documents end ``failed`` after one attempt of
the step that refused them, with their reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.artifact import ArtifactStatus
from infrastructure.temporal.models import (
    EXTRACT_CONTENT,
    INSPECT_ARTIFACT,
    RECORD_PROCESSING_FAILURE,
    SUMMARIZE_TEXT,
)
from tests import office_corpus as corpus
from tests.workflow.harness import Harness, activities_scheduled, activity_attempts


@pytest.fixture
def harness(time_skipping_env: WorkflowEnvironment) -> Iterator[Harness]:
    harness = Harness(time_skipping_env.client)
    yield harness
    harness.close()


# Each format: its file, its kind and MIME type, and words its text must hold.
FORMATS: dict[str, tuple[Callable[[Path], Path], str, str, str]] = {
    "docx": (
        corpus.docx_file,
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        corpus.DOCX_PARAGRAPH,
    ),
    "xlsx": (
        corpus.xlsx_file,
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Engineering",
    ),
    "pptx": (
        corpus.pptx_file,
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "Revenue is up",
    ),
    "odt": (
        corpus.odt_file,
        "odf",
        "application/vnd.oasis.opendocument.text",
        corpus.DOCX_PARAGRAPH,
    ),
    "ods": (
        corpus.ods_file,
        "odf",
        "application/vnd.oasis.opendocument.spreadsheet",
        "Research",
    ),
    "odp": (
        corpus.odp_file,
        "odf",
        "application/vnd.oasis.opendocument.presentation",
        "Hire two engineers",
    ),
    "html": (corpus.html_file, "html", "text/html", corpus.HTML_BODY),
    "eml": (corpus.eml_file, "email", "message/rfc822", "please find the invoice attached."),
}


@pytest.mark.parametrize("name", FORMATS)
async def test_a_document_is_processed_with_its_outputs_and_a_summary(
    name: str, harness: Harness, tmp_path: Path
) -> None:
    make, kind, mime_type, words = FORMATS[name]
    path = make(tmp_path)
    request = harness.upload(path.read_bytes(), filename=path.name)

    async with harness.worker():
        outcome = await (await harness.start(request)).result()

    assert (outcome.status, outcome.kind, outcome.has_summary) == ("processed", kind, True)
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert artifact.mime_type == mime_type
    assert artifact.warnings == []
    text = b"".join(harness.blobs.blobs[loc] for loc in artifact.text_locations).decode()
    assert words in text
    assert harness.summarizer.texts == [text]
    assert artifact.markdown_location in harness.blobs.blobs
    assert artifact.chunks_location in harness.blobs.blobs


HOSTILE: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "zip bomb": (corpus.zip_bomb_docx_file, "too_large", EXTRACT_CONTENT),
    "lying member": (corpus.lying_member_docx, "corrupt", EXTRACT_CONTENT),
    "billion laughs": (corpus.billion_laughs_docx, "corrupt", EXTRACT_CONTENT),
    "external entity": (corpus.external_entity_docx, "corrupt", EXTRACT_CONTENT),
    "encrypted": (corpus.encrypted_docx, "encrypted", INSPECT_ARTIFACT),
    "legacy doc": (corpus.legacy_doc, "unsupported_type", INSPECT_ARTIFACT),
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_or_legacy_document_fails_after_one_attempt_with_its_reason(
    name: str, harness: Harness, tmp_path: Path
) -> None:
    make, reason, step = HOSTILE[name]
    path = make(tmp_path)
    request = harness.upload(path.read_bytes(), filename=path.name)

    async with harness.worker():
        handle = await harness.start(request)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        history = await handle.fetch_history()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == (reason, True)
    assert activity_attempts(history, step) == [1]
    assert activities_scheduled(history)[-2:] == [step, RECORD_PROCESSING_FAILURE]
    assert SUMMARIZE_TEXT not in activities_scheduled(history)
    artifact = harness.artifacts.get_artifact(request.artifact_id)
    assert (artifact.status, artifact.failure_reason) == (ArtifactStatus.FAILED, reason)
