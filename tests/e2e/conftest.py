"""Fixtures of the end-to-end tests: the whole service, as `make dev` runs it, and a
headless Chromium for the web page's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from infrastructure.config import Settings
from tests.e2e.stack import DevStack, started_dev_stack


@pytest.fixture
async def dev_stack(settings: Settings, tmp_path: Path) -> AsyncIterator[DevStack]:
    """`make dev` on SQLite, then on PostgreSQL (EVENT_STORE=postgres, a fresh schema)."""
    async with started_dev_stack(settings, tmp_path) as stack:
        yield stack


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the web page test needs Debian's chromium "
            "(`make install` installs it, or `apt-get install chromium`)"
        )
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    yield page
    await context.close()
    assert not dialogs, f"the page opened dialogs (markup from a filename ran?): {dialogs}"
