"""Deleting from an artifact's page in a real browser: confirmed on the page, then back to the
list saying so (204), or erasing while its run is cancelled, until it is gone (202), or
erased already (410).

Against the API app on in-memory services, its ``DELETE`` on the real ``Eraser``;
``test_web_page.py`` deletes through the whole running service.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from playwright.async_api import Page, expect

from application.artifacts import ArtifactsApplication
from application.erasure import Eraser, by_tenant
from domain.artifact import DEFAULT_TENANT
from infrastructure.blobstore import LocalBlobStore
from tests.fakes import FakeCatalog, InMemoryKeyStore, in_memory_artifacts
from tests.unit.test_api import app_with
from tests.unit.test_cli import served


@dataclass
class Site:
    url: str
    artifacts: ArtifactsApplication
    blobs: LocalBlobStore
    eraser: Eraser

    def uploaded(self, name: str = "notes.txt") -> uuid.UUID:
        writer = self.blobs.writer()
        writer.write(b"hello")
        blob = writer.commit()
        return self.artifacts.create_artifact_once(
            idempotency_key=None,
            filename=name,
            content_type="text/plain",
            size=blob.size,
            sha256=blob.sha256,
            storage_location=blob.location,
        ).id

    def stopped(self) -> uuid.UUID:
        """An artifact whose run was cancelled: it is erased at once."""
        artifact_id = self.uploaded()
        self.artifacts.record_processing_started(artifact_id, run=0, workflow_id="wf")
        self.artifacts.record_processing_cancelled(
            artifact_id, run=0, reason="cancelled", message=""
        )
        return artifact_id


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    artifacts = in_memory_artifacts()
    blobs = LocalBlobStore(tmp_path / "blobs")
    eraser = Eraser(artifacts, blobs, InMemoryKeyStore())
    app = app_with(
        artifacts, blobs, catalog=FakeCatalog(), read_model_wait_seconds=0.01, eraser=eraser
    )
    with structlog.testing.capture_logs(), served(app) as url:
        yield Site(url, artifacts, blobs, eraser)
    artifacts.close()


async def test_delete_asks_on_the_page_then_goes_back_to_the_list_saying_deleted(
    site: Site, page: Page
) -> None:
    artifact_id = site.stopped()
    await page.goto(f"{site.url}/ui/artifacts/{artifact_id}")
    await expect(page.locator("#status")).to_have_attribute("data-status", "cancelled")

    await page.click("#delete")
    await expect(page.locator("#delete-confirm")).to_be_visible()
    await page.click("#delete-no")  # changed their mind: nothing happens
    await expect(page.locator("#delete-confirm")).to_be_hidden()
    assert not site.artifacts.get_artifact(artifact_id).erased
    await page.click("#delete")
    await page.click("#delete-yes")

    await expect(page).to_have_url(f"{site.url}/")
    await expect(page.locator("#notice")).to_have_text(f"Artifact {artifact_id} deleted.")
    assert site.artifacts.get_artifact(artifact_id).erased


async def test_deleting_during_a_run_shows_erasing_until_it_is_gone(site: Site, page: Page) -> None:
    artifact_id = site.uploaded()
    site.artifacts.record_processing_started(artifact_id, run=0, workflow_id="wf")
    await page.goto(f"{site.url}/ui/artifacts/{artifact_id}")
    await expect(page.locator("#status")).to_have_attribute("data-status", "processing")

    await page.click("#delete")
    await page.click("#delete-yes")

    await expect(page.locator("#deletion")).to_have_text("Erasing: the run is being cancelled…")
    # The run stops, as the workflow would, and the erasure completes.
    await asyncio.to_thread(
        site.artifacts.record_processing_cancelled,
        artifact_id,
        run=0,
        reason="cancelled",
        message="",
    )
    await asyncio.to_thread(site.eraser.complete_pending, artifact_id)
    await expect(page).to_have_url(f"{site.url}/", timeout=10_000)
    await expect(page.locator("#notice")).to_contain_text("deleted")


async def test_the_page_of_an_erased_artifact_says_it_was_erased(site: Site, page: Page) -> None:
    artifact_id = site.stopped()
    site.eraser.erase(artifact_id, by=by_tenant(DEFAULT_TENANT))

    await page.goto(f"{site.url}/ui/artifacts/{artifact_id}")

    await expect(page.locator("#deletion")).to_have_text("This artifact was erased.")
    await expect(page.locator("#delete")).to_be_hidden()
