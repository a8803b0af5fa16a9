"""With ``BLOB_STORE=s3`` the processes keep every blob in the bucket, none on their disk:
an upload through the API, the activities reading it and storing its text, the orphan
sweep, each built by the composition root on a real S3-compatible server (SeaweedFS)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from application.artifacts import ArtifactsApplication
from application.ports import BlobStore, ContentFacts
from infrastructure.config import Settings
from infrastructure.di.container import (
    api_app,
    default_blob_store,
    orphan_sweep,
    processing_options,
)
from infrastructure.eventstore import application_env
from infrastructure.processing.text import read_text
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import Extraction
from tests import corpus
from tests.fakes import FakeCatalog, FakeSummarizer
from tests.support import SeaweedFS, make_settings


@pytest.fixture
def settings(tmp_path: Path, seaweedfs_server: SeaweedFS) -> Settings:
    settings = make_settings(tmp_path, "sqlite").model_copy(update={"s3_part_size_mb": 5})
    return seaweedfs_server.settings(settings)


@pytest.fixture
def artifacts(settings: Settings) -> Iterator[ArtifactsApplication]:
    app = ArtifactsApplication(env=application_env(settings))
    yield app
    app.close()


async def no_temporal_probe() -> None:
    return None


async def upload(
    settings: Settings, artifacts: ArtifactsApplication, content: bytes, filename: str
) -> UUID:
    app = api_app(
        settings, artifacts=artifacts, catalog=FakeCatalog(), temporal_probe=no_temporal_probe
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.post(
            "/artifacts", files={"file": (filename, content, "application/octet-stream")}
        )
        assert response.status_code == 202, response.text
        artifact_id = UUID(response.json()["id"])
        downloaded = await client.get(f"/artifacts/{artifact_id}/content")
        assert downloaded.content == content
    return artifact_id


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()] if directory.exists() else []


def extract(
    settings: Settings, artifacts: ArtifactsApplication, blobs: BlobStore, artifact_id: UUID
) -> ContentFacts:
    """Inspects and extracts the upload as the Temporal worker does; what it found."""
    activities = ArtifactActivities(
        artifacts, blobs, FakeSummarizer(), processing_options(settings)
    )
    env = ActivityEnvironment()
    request = artifacts.processing_request_for(artifact_id, run=0)
    inspection = env.run(activities.inspect_artifact, request)
    facts = env.run(
        activities.extract_content,
        Extraction(
            artifact_id=artifact_id,
            storage_location=request.storage_location,
            mime_type=inspection.mime_type,
            kind=inspection.kind,
        ),
    )
    assert isinstance(facts, ContentFacts)
    return facts


async def test_an_uploaded_text_is_stored_in_the_bucket_and_its_text_extracted_there(
    settings: Settings, artifacts: ArtifactsApplication, seaweedfs_server: SeaweedFS
) -> None:
    text = b"Stored in a bucket.\nNowhere on this host's disk.\n"
    artifact_id = await upload(settings, artifacts, text, "notes.txt")
    blobs = default_blob_store(settings)

    facts = extract(settings, artifacts, blobs, artifact_id)
    locations = facts.text_locations

    assert read_text(blobs, locations, max_chars=1000) == text.decode()
    keys = [
        item["Key"]
        for item in seaweedfs_server.client()
        .list_objects_v2(Bucket=settings.s3_bucket or "", Prefix=settings.s3_key_prefix)
        .get("Contents", [])
    ]
    stored = artifacts.get_artifact(artifact_id).storage_location
    # The upload, its text, its Markdown and its chunks (a text file has no page facts).
    outputs = [facts.markdown_location, facts.chunks_location]
    assert None not in outputs
    expected = [stored, *locations, *(loc for loc in outputs if loc)]
    assert sorted(keys) == sorted(settings.s3_key_prefix + loc for loc in expected)
    assert files_under(settings.blob_dir) == []


async def test_an_uploaded_pdf_has_its_pages_text_stored_in_the_bucket(
    tmp_path: Path, settings: Settings, artifacts: ArtifactsApplication
) -> None:
    pdf = corpus.text_pdf(tmp_path, pages=3).read_bytes()
    artifact_id = await upload(settings, artifacts, pdf, "three.pdf")
    blobs = default_blob_store(settings)

    locations = extract(settings, artifacts, blobs, artifact_id).text_locations

    text = read_text(blobs, locations, max_chars=100_000)
    assert [page.strip() for page in text.split("\f") if page.strip()] == [
        corpus.page_text(number) for number in (1, 2, 3)
    ]
    assert files_under(settings.blob_dir) == []


async def test_a_large_upload_goes_to_the_bucket_in_parts(
    settings: Settings, artifacts: ArtifactsApplication
) -> None:
    content = os.urandom(settings.s3_part_size_mb * 1024 * 1024 * 2 + 12345)

    artifact_id = await upload(settings, artifacts, content, "large.bin")

    with default_blob_store(settings).open(
        artifacts.get_artifact(artifact_id).storage_location
    ) as blob:
        assert blob.read() == content
    assert files_under(settings.blob_dir) == []


def test_the_orphan_sweep_deletes_unreferenced_blobs_and_unfinished_uploads_from_the_bucket(
    settings: Settings, artifacts: ArtifactsApplication
) -> None:
    blobs = default_blob_store(settings)
    referenced, orphan = blobs.writer(), blobs.writer()
    referenced.write(b"an upload")
    orphan.write(b"nobody's")
    kept, swept = referenced.commit(), orphan.commit()
    unfinished = blobs.writer()
    unfinished.write(os.urandom(settings.s3_part_size_mb * 1024 * 1024 + 1))
    artifact_id = artifacts.create_artifact_once(
        idempotency_key=None,
        filename="upload.txt",
        content_type="text/plain",
        size=kept.size,
        sha256=kept.sha256,
        storage_location=kept.location,
    ).id
    # A run with an outcome: its blobs are not shielded by an open run, only by the event.
    artifacts.record_processing_started(artifact_id, run=0, workflow_id="wf")
    artifacts.record_processing_failure(artifact_id, run=0, reason="corrupt", message="no")

    report = orphan_sweep(settings)(older_than=0, dry_run=False)

    assert report.orphans == [swept.location]
    assert [location.startswith("tmp/") for location in report.temp_files] == [True]
    assert [entry.location for entry in blobs.entries()] == [kept.location]
