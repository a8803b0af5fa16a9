"""The web page in a real browser against the whole service as `make dev` runs it.

A user's view: open ``/``, type an API key, choose a file and drop another, watch them become
``processed`` in the list without reloading, then open its page: facts, summary, history,
the link to its Temporal run, the text's language and its Markdown; a blank file's page
leads with the ``no_text`` warning, and deleting it takes it off the list for good.
Screenshots land in ``test-artifacts/`` for humans.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.async_api import FilePayload, Page, Request, expect

from infrastructure.config import Settings
from tests.e2e.stack import DevStack
from tests.support import REPO_ROOT, make_settings

pytestmark = pytest.mark.temporal

API_KEY = "e2e-test-key"
# Angle brackets never reach the page (the domain sanitises filenames; browsers send double
# quotes as %22), but ampersands and single quotes do: the page must show them as text.
FILENAME = "field notes & 'todo' (draft).txt"
CONTENT = (
    b"The pipeline processes every upload exactly once. "
    b"Each artifact records its history as domain events. "
    b"A browser shows the status of each run as it changes.\n"
)
SCREENSHOTS = REPO_ROOT / "test-artifacts"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: the page talks to the API, which is the same on every event store."""
    return make_settings(tmp_path, "sqlite")


async def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """Saved in the test's directory, and copied to ``test-artifacts/`` for humans and CI."""
    await page.screenshot(path=tmp_path / name, full_page=True)
    keep(tmp_path / name)


def keep(path: Path) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)


async def test_a_file_uploaded_in_the_browser_is_watched_until_processed(
    dev_stack: DevStack, page: Page, tmp_path: Path
) -> None:
    await page.goto(f"{dev_stack.api_url}/")
    await page.fill("#api-key", API_KEY)
    api_calls: list[Request] = []  # from now on, every one must carry the key
    page.on(
        "request",
        lambda request: (
            api_calls.append(request) if request.resource_type in {"fetch", "xhr"} else None
        ),
    )
    # Marks this document: it is still there at the end only if the page never reloaded.
    await page.evaluate("window.notReloaded = true")

    file = FilePayload(name=FILENAME, mimeType="text/plain", buffer=CONTENT)
    await page.set_input_files("#file-input", files=[file])

    upload = page.locator("#uploads li.upload.done")
    await expect(upload.locator("progress")).to_have_attribute("value", "100", timeout=15_000)
    row = page.locator("#artifact-list tbody tr", has_text=FILENAME)
    await expect(row.locator("[data-status]")).to_have_attribute(
        "data-status", "processed", timeout=60_000
    )
    # The filename is text, not markup, however it looks.
    assert await row.locator("a").text_content() == FILENAME

    # A file dropped on the page is uploaded the same way.
    dropped = await page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["Dropped on the page."], "dropped.txt", {type: "text/plain"}));
            return data;
        }"""
    )
    await page.dispatch_event("#drop-zone", "drop", {"dataTransfer": dropped})
    dropped_row = page.locator("#artifact-list tbody tr", has_text="dropped.txt")
    await expect(dropped_row.locator("[data-status]")).to_have_attribute(
        "data-status", "processed", timeout=60_000
    )
    assert await page.evaluate("window.notReloaded") is True
    await screenshot(page, tmp_path, "web-page.png")

    await row.locator("a").click()
    await expect(page.locator("#status")).to_have_attribute("data-status", "processed")
    artifact_id = page.url.rsplit("/", 1)[-1]
    await expect(page.locator("#filename")).to_have_text(FILENAME)
    await expect(page.locator("#api-key")).to_have_value(API_KEY)  # kept in localStorage
    await expect(page.locator("#summary")).not_to_be_empty()
    await expect(page.locator("#facts")).to_contain_text("text/plain")
    await expect(page.locator("#history li .event")).to_have_text(
        ["ArtifactCreated", "ProcessingStarted", "ArtifactProcessed", "SummaryCandidateAdded"]
    )
    temporal = page.locator("#temporal-link")
    href = await temporal.get_attribute("href")
    assert href == (
        f"{dev_stack.temporal_ui_url}/namespaces/default/workflows/artifact-{artifact_id}"
    )
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(href)).status_code == 200  # the Temporal UI serves the run
    # Its results: the text's language, the Markdown and chunks to download, no warning.
    await expect(page.locator("#results")).to_contain_text("English (en)")
    await expect(page.locator("#download-markdown")).to_be_visible()
    await expect(page.locator("#download-chunks")).to_be_visible()
    await expect(page.locator("#warnings")).to_be_hidden()
    async with page.expect_download() as download:
        await page.click("#download-markdown")
    markdown = await download.value
    assert markdown.suggested_filename == FILENAME.removesuffix(".txt") + ".md"
    await screenshot(page, tmp_path, "web-page-artifact.png")

    # A file with nothing to read is processed, and its page says so before anything else.
    await page.goto(f"{dev_stack.api_url}/")
    blank = FilePayload(name="blank.txt", mimeType="text/plain", buffer=b" \n\n \n")
    await page.set_input_files("#file-input", files=[blank])
    blank_row = page.locator("#artifact-list tbody tr", has_text="blank.txt")
    await expect(blank_row.locator("[data-status]")).to_have_attribute(
        "data-status", "processed", timeout=60_000
    )
    await blank_row.locator("a").click()
    await expect(page.locator("#warnings [data-warning='no_text']")).to_be_visible()
    await expect(page.locator("#summary-section")).to_be_hidden()

    # Deleted for good: confirmed on the page, then the list says so and no longer has it;
    # its page says it was erased.
    blank_id = page.url.rsplit("/", 1)[-1]
    await page.click("#delete")
    await page.click("#delete-yes")
    await expect(page.locator("#notice")).to_have_text(f"Artifact {blank_id} deleted.")
    await expect(page.locator("#artifact-list tbody tr", has_text="blank.txt")).to_have_count(
        0, timeout=15_000
    )
    await page.goto(f"{dev_stack.api_url}/ui/artifacts/{blank_id}")
    await expect(page.locator("#deletion")).to_have_text("This artifact was erased.")

    await page.goto(f"{dev_stack.api_url}/ui/artifacts/{uuid.uuid4()}")
    await expect(page.locator("#error")).to_contain_text("artifact_not_found")

    assert {call.method for call in api_calls} == {"GET", "POST", "DELETE"}
    for request in api_calls:
        assert await request.header_value("Authorization") == f"Bearer {API_KEY}", request.url
