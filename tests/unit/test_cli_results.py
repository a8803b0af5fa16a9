"""The CLI's ``show`` of the results and its ``text``, ``markdown``, ``chunks`` and ``pages``
commands, against the real API app served by uvicorn on a free port.

Results are recorded the way the workflow records them (``test_api_results``'s helpers).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from infrastructure.cli import main
from tests.unit.test_api import Service, build
from tests.unit.test_api_results import (
    CHUNKS,
    MARKDOWN,
    PAGES,
    created,
    record_structured_result,
)
from tests.unit.test_cli import served

TEXT = "Quarterly report\fCafé au lait\f"


@dataclass
class Api:
    url: str
    service: Service

    def run(self, *args: str) -> int:
        return main(["--url", self.url, *args])

    def processed(self, filename: str = "report.pdf", **results: Any) -> str:
        artifact_id = created(self.service, b"%PDF-1.7", filename)
        record_structured_result(
            self.service,
            artifact_id,
            **{"chunks": CHUNKS, "pages": PAGES, "text": TEXT, **results},
        )
        return artifact_id


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    service = build(tmp_path)
    try:
        with structlog.testing.capture_logs(), served(service.app) as url:
            yield Api(url, service)
    finally:
        service.artifacts.close()


# --- show -------------------------------------------------------------------------------


def test_show_names_the_language_and_the_results_to_fetch(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = api.processed()

    assert api.run("show", artifact_id) == 0

    out = capsys.readouterr().out
    assert "language:     en\n" in out
    assert "warning:" not in out
    assert (
        "outputs:      text markdown chunks pages  (artifacts text|markdown|chunks|pages ID)" in out
    )


def test_show_counts_pages_and_characters_in_words(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    one = api.processed("scan.png", text="a", page_count=1)
    many = api.processed()

    assert api.run("show", one) == 0
    assert "results:      pdf, 1 page, 1 character\n" in capsys.readouterr().out
    assert api.run("show", many) == 0
    assert f"results:      pdf, 3 pages, {len(TEXT)} characters\n" in capsys.readouterr().out


def test_show_gives_the_no_text_warning_and_what_it_means(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = api.processed(
        "scan.pdf", text="", chunks=[], language=None, warnings=("no_text",), summary=None
    )

    assert api.run("show", artifact_id) == 0

    out = capsys.readouterr().out
    assert "status:       processed" in out
    assert "warning:      no_text (no text was found in the document, not even by OCR)" in out
    assert "language:     not detected" in out
    assert "outputs:      markdown chunks pages " in out


# --- text and markdown --------------------------------------------------------------------


@pytest.mark.parametrize(("command", "expected"), [("text", TEXT), ("markdown", MARKDOWN)])
def test_text_and_markdown_write_the_stored_result_to_stdout(
    api: Api, capsys: pytest.CaptureFixture[str], command: str, expected: str
) -> None:
    artifact_id = api.processed()

    assert api.run(command, artifact_id) == 0

    out = capsys.readouterr()
    assert out.out == expected
    assert out.err == ""


# --- chunks and pages -----------------------------------------------------------------------


def test_chunks_json_is_the_servers_array(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    artifact_id = api.processed()

    assert api.run("chunks", artifact_id, "--json") == 0

    assert json.loads(capsys.readouterr().out) == CHUNKS


def test_chunks_json_takes_a_window(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    artifact_id = api.processed()

    assert api.run("chunks", artifact_id, "--json", "--offset", "2", "--limit", "3") == 0

    assert json.loads(capsys.readouterr().out) == CHUNKS[2:5]


def test_chunks_print_where_each_chunk_is_then_its_text(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact_id = api.processed()

    assert api.run("chunks", artifact_id, "--limit", "2") == 0

    assert capsys.readouterr().out == (
        "#0  page 1  60 characters  Quarterly report > Sales | growth\n"
        f"{CHUNKS[0]['text']}\n\n"
        "#1  page 1  60 characters  Quarterly report > Sales | growth\n"
        f"{CHUNKS[1]['text']}\n\n"
    )


def test_pages_print_one_line_per_page(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    artifact_id = api.processed()

    assert api.run("pages", artifact_id) == 0

    assert capsys.readouterr().out == "1\ttext\t-\t812\n2\tocr\t91.5\t640\n3\tnone\t-\t0\n"


# --- Errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["text", "markdown", "chunks", "pages"])
def test_a_result_not_written_yet_exits_4_and_says_why(
    api: Api, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    artifact_id = created(api.service, b"hello", "notes.txt")

    code = api.run(command, artifact_id)

    out = capsys.readouterr()
    assert code == 4
    assert out.out == ""
    assert "is uploaded (run 0)" in out.err


@pytest.mark.parametrize("artifact_id", [str(uuid.uuid4()), "not-an-id"])
@pytest.mark.parametrize("command", ["markdown", "chunks"])
def test_the_results_of_an_unknown_artifact_exit_4(
    api: Api, capsys: pytest.CaptureFixture[str], command: str, artifact_id: str
) -> None:
    assert api.run(command, artifact_id) == 4
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("window", [["--limit", "0"], ["--offset", "-1"]])
def test_a_window_out_of_bounds_is_a_usage_error(
    api: Api, capsys: pytest.CaptureFixture[str], window: list[str]
) -> None:
    assert api.run("chunks", str(uuid.uuid4()), *window) == 2
