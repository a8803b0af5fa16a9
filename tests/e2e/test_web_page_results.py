"""An artifact's page in a real browser: its warnings, language, pages and result downloads.

Against the API app on in-memory services (served by uvicorn), with results recorded the
way the workflow records them: the states a real run reaches only with a scanner's output
(a scan with nothing legible, OCRed pages) are set up directly, and the page is checked
for each. ``test_web_page.py`` drives the same page against the whole running service.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from playwright.async_api import Download, Page, expect

from tests.e2e.test_web_page import keep
from tests.unit.test_api import Service, build
from tests.unit.test_api_results import (
    CHUNKS,
    MARKDOWN,
    PAGES,
    created,
    record_structured_result,
)
from tests.unit.test_cli import served


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = build(tmp_path)
    yield service
    service.artifacts.close()


@pytest.fixture
def url(service: Service) -> Iterator[str]:
    with structlog.testing.capture_logs(), served(service.app) as url:
        yield url


async def saved(download: Download) -> str:
    """What the browser saved, as UTF-8."""
    return await asyncio.to_thread(Path(await download.path()).read_text, "utf-8")


async def test_a_scan_with_nothing_legible_shows_the_no_text_warning_first(
    service: Service, url: str, page: Page, tmp_path: Path
) -> None:
    artifact_id = created(service, b"%PDF-1.7", "scan.pdf")
    record_structured_result(
        service,
        artifact_id,
        text="",
        markdown="<!-- page 1 -->\n",
        chunks=[],
        pages=[{"number": 1, "source": "none", "confidence": None, "chars": 0}],
        page_count=1,
        language=None,
        warnings=("no_text",),
        summary=None,
    )

    await page.goto(f"{url}/ui/artifacts/{artifact_id}")

    await expect(page.locator("#status")).to_have_attribute("data-status", "processed")
    warning = page.locator("#warnings [data-warning='no_text']")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("No text was found in this document")
    # Above everything else the page says about the artifact.
    box = await page.locator("#warnings").bounding_box()
    facts = await page.locator("#facts").bounding_box()
    assert box is not None
    assert facts is not None
    assert box["y"] < facts["y"]
    await expect(page.locator("#results")).to_contain_text("not detected")
    await expect(page.locator("#summary-section")).to_be_hidden()
    await expect(page.locator("#download-text")).to_be_hidden()
    await expect(page.locator("#download-markdown")).to_be_visible()
    await expect(page.locator("#pages tbody tr")).to_have_count(1)
    await expect(page.locator("#pages tbody tr td").nth(1)).to_have_text("nothing legible")
    await page.screenshot(path=tmp_path / "web-page-no-text.png", full_page=True)
    keep(tmp_path / "web-page-no-text.png")


async def test_a_processed_document_shows_its_language_pages_and_result_downloads(
    service: Service, url: str, page: Page, tmp_path: Path
) -> None:
    artifact_id = created(service, b"%PDF-1.7", "report.pdf")
    record_structured_result(service, artifact_id, chunks=CHUNKS, pages=PAGES)

    await page.goto(f"{url}/ui/artifacts/{artifact_id}")

    await expect(page.locator("#status")).to_have_attribute("data-status", "processed")
    await expect(page.locator("#warnings")).to_be_hidden()
    await expect(page.locator("#results")).to_contain_text("English (en)")
    await expect(page.locator("#pages tbody tr")).to_have_count(3)
    await expect(page.locator("#pages-summary")).to_have_text(
        "(1 from the text layer, 1 by OCR (mean confidence 92), 1 with nothing legible)"
    )
    await expect(page.locator("#pages tbody tr[data-source='ocr'] td").nth(2)).to_have_text("91.5")

    async with page.expect_download() as markdown_download:
        await page.click("#download-markdown")
    markdown = await markdown_download.value
    assert markdown.suggested_filename == "report.md"
    assert await saved(markdown) == MARKDOWN

    async with page.expect_download() as chunks_download:
        await page.click("#download-chunks")
    chunks = await chunks_download.value
    assert chunks.suggested_filename == "report.chunks.json"
    assert json.loads(await saved(chunks)) == CHUNKS
    await page.screenshot(path=tmp_path / "web-page-results.png", full_page=True)
    keep(tmp_path / "web-page-results.png")


async def test_an_artifact_processed_before_structured_output_offers_only_its_text(
    service: Service, url: str, page: Page
) -> None:
    artifact_id = created(service, b"%PDF-1.7", "old.pdf")
    record_structured_result(service, artifact_id, markdown=None, language=None)

    await page.goto(f"{url}/ui/artifacts/{artifact_id}")

    await expect(page.locator("#status")).to_have_attribute("data-status", "processed")
    await expect(page.locator("#download-text")).to_be_visible()
    for hidden in ("#download-markdown", "#download-chunks", "#pages-section", "#warnings"):
        await expect(page.locator(hidden)).to_be_hidden()
    await expect(page.locator("#error")).to_be_hidden()
