"""The installed ``artifacts`` command against the whole service as `make dev` runs it.

A user's view from a shell: upload and wait, then find the artifact with ``show`` and in
``list`` (which answers from the read model the read worker keeps).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from infrastructure.config import Settings
from tests.e2e.stack import DevStack
from tests.support import make_settings

pytestmark = pytest.mark.temporal

ARTIFACTS = Path(sys.executable).parent / "artifacts"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: the CLI talks to the API, which is the same on every event store."""
    return make_settings(tmp_path, "sqlite")


@dataclass
class Run:
    code: int
    out: str
    err: str


async def artifacts(stack: DevStack, *args: str) -> Run:
    """``artifacts ARGS...`` as a user runs it, with ARTIFACTS_URL pointing at the stack."""
    assert ARTIFACTS.exists(), "no `artifacts` script: the project is not installed (uv sync)"
    process = await asyncio.create_subprocess_exec(
        str(ARTIFACTS),
        *args,
        env={**os.environ, "ARTIFACTS_URL": stack.api_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def test_upload_wait_show_and_list_from_a_shell(dev_stack: DevStack, tmp_path: Path) -> None:
    notes = tmp_path / "meeting notes.txt"
    notes.write_text("We agreed to ship the command line first. The page comes next.\n")

    upload = await artifacts(dev_stack, "upload", "--wait", "--json", str(notes))

    assert upload.code == 0, upload.err
    assert upload.err == ""  # not a terminal: no progress bars in a pipe
    [view] = json.loads(upload.out)
    assert (view["file"], view["filename"]) == (str(notes), "meeting notes.txt")
    assert view["status"] == "processed"
    assert view["mime_type"] == "text/plain"

    show = await artifacts(dev_stack, "show", view["id"])
    assert show.code == 0, show.err
    assert "status:       processed" in show.out
    assert "SummaryCandidateAdded" in show.out
    assert "language:     en" in show.out

    markdown = await artifacts(dev_stack, "markdown", view["id"])
    assert markdown.code == 0, markdown.err
    assert markdown.out == "We agreed to ship the command line first. The page comes next.\n"
    chunks = await artifacts(dev_stack, "chunks", view["id"], "--json")
    assert chunks.code == 0, chunks.err
    assert [chunk["text"] for chunk in json.loads(chunks.out)] == [
        "We agreed to ship the command line first. The page comes next."
    ]
    pages = await artifacts(dev_stack, "pages", view["id"])
    assert pages.code == 4  # a text file is not paged
    assert "not a paged document" in pages.err

    listed = await artifacts(dev_stack, "list", "--status", "processed", "--json")
    assert listed.code == 0, listed.err
    assert view["id"] in [item["id"] for item in json.loads(listed.out)]

    missing = await artifacts(dev_stack, "show", "00000000-0000-0000-0000-000000000000")
    assert missing.code == 4
