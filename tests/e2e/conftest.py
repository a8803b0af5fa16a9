"""Fixtures of the end-to-end tests: the whole service, as `make dev` runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infrastructure.config import Settings
from tests.e2e.stack import DevStack, started_dev_stack


@pytest.fixture
async def dev_stack(settings: Settings, tmp_path: Path) -> AsyncIterator[DevStack]:
    """`make dev` on SQLite, then on PostgreSQL (EVENT_STORE=postgres, a fresh schema)."""
    async with started_dev_stack(settings, tmp_path) as stack:
        yield stack
