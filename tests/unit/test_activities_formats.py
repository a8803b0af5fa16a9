"""The inspect and extract activities on office, web and e-mail documents: sniffed to
their kind, parsed in the limited child, written as text, Markdown and chunks; hostile and
legacy documents fail permanently (one attempt) with their reason.

As in ``test_activities``: the real application in memory, a fake blob store, the real
libmagic and parsers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from application.ports import ContentFacts, ProcessingRequest
from infrastructure.processing.formats.archive import ArchiveLimits
from infrastructure.processing.options import ProcessingOptions
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import Extraction, Inspection
from tests import office_corpus as corpus
from tests.fakes import FakeBlobStore, FakeSummarizer, in_memory_artifacts


class Office:
    """The activities, a blob store and an activity context."""

    def __init__(self, options: ProcessingOptions | None = None) -> None:
        self.artifacts = in_memory_artifacts()
        self.blobs = FakeBlobStore()
        self.activities = ArtifactActivities(self.artifacts, self.blobs, FakeSummarizer(), options)
        self.heartbeats: list[Any] = []
        self.env = ActivityEnvironment()
        self.env.on_heartbeat = lambda *details: self.heartbeats.extend(details)

    def upload(
        self, path: Path, content_type: str = "application/octet-stream"
    ) -> ProcessingRequest:
        blob = self.blobs.put(path.read_bytes())
        artifact_id = self.artifacts.create_artifact_once(
            idempotency_key=None,
            filename=path.name,
            content_type=content_type,
            size=blob.size,
            sha256=blob.sha256,
            storage_location=blob.location,
        ).id
        return self.artifacts.processing_request_for(artifact_id, run=0)

    def inspect(self, request: ProcessingRequest) -> Inspection:
        return self.env.run(self.activities.inspect_artifact, request)

    def extract(self, request: ProcessingRequest) -> ContentFacts:
        inspection = self.inspect(request)
        return self.env.run(
            self.activities.extract_content,
            Extraction(
                artifact_id=request.artifact_id,
                storage_location=request.storage_location,
                mime_type=inspection.mime_type,
                kind=inspection.kind,
            ),
        )

    def text(self, location: str | None) -> str:
        assert location is not None
        return self.blobs.blobs[location].decode("utf-8")


@pytest.fixture
def office() -> Office:
    return Office()


# Each format: its file, its kind, its facts, and lines its Markdown must hold.
DOCUMENTS: dict[str, tuple[Callable[[Path], Path], str, dict[str, Any], list[str]]] = {
    "docx": (
        corpus.docx_file,
        "docx",
        {"tables": 1},
        [
            "# Quarterly report",
            "# Findings",
            "- Paper supplies",
            "    - Mostly black ink",
            "| Item | Cost |",
            "| Paper | 12.50 |",
            "## Next steps",
        ],
    ),
    "xlsx": (
        corpus.xlsx_file,
        "xlsx",
        {"sheets": 2, "rows": 5, "truncated": False},
        [
            "## Budget",
            "| Item | Cost | Bought | Paid |",
            "| Paper | 12.5 | 2024-03-01 | TRUE |",
            "## Staff",
            "| Grace | Research |",
        ],
    ),
    "pptx": (
        corpus.pptx_file,
        "pptx",
        {"slides": 2},
        [
            "<!-- page 1 -->",
            "## Quarterly review",
            "- Revenue is up",
            "### Notes",
            "Thank the team.",
            "<!-- page 2 -->",
            "## Plans",
        ],
    ),
    "odt": (
        corpus.odt_file,
        "odf",
        {"tables": 1},
        ["# Findings", "- Ink cartridges", "| Ink | 3.00 |", "## Next steps"],
    ),
    "ods": (
        corpus.ods_file,
        "odf",
        {"sheets": 2, "rows": 5, "truncated": False},
        ["## Budget", "| Ada | Engineering |"],
    ),
    "odp": (
        corpus.odp_file,
        "odf",
        {"slides": 2},
        ["<!-- page 1 -->", "## Quarterly review", "- Costs are flat", "<!-- page 2 -->"],
    ),
    "html": (
        corpus.html_file,
        "html",
        {"encoding": "utf-8"},
        ["# Café menu", corpus.HTML_BODY, "- Espresso", "    - Double", "| Crêpe | 4 € |"],
    ),
    "eml": (
        corpus.eml_file,
        "email",
        {"attachments": 3},
        [
            "**Subject:** Invoice for März",
            "please find the invoice attached.",
            "- Rechnung März.pdf (application/pdf, 1040 bytes)",
            "- Übersicht.xlsx (application/vnd.ms-excel, 1000 bytes)",
        ],
    ),
}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_a_document_is_sniffed_parsed_and_written_as_text_markdown_and_chunks(
    name: str, office: Office, tmp_path: Path
) -> None:
    make, kind, details, lines = DOCUMENTS[name]
    request = office.upload(make(tmp_path))

    facts = office.extract(request)

    assert facts.kind == kind
    assert facts.details == details
    assert facts.char_count > 0
    assert facts.warnings == []
    markdown = office.text(facts.markdown_location).splitlines()
    for line in lines:
        assert line in markdown
    chunks = json.loads(office.text(facts.chunks_location))
    assert chunks
    assert all(chunk["text"] for chunk in chunks)
    plain = "".join(office.text(location) for location in facts.text_locations)
    assert plain.count("\f") == (facts.page_count or 0)


def test_slides_are_pages_with_page_facts(office: Office, tmp_path: Path) -> None:
    facts = office.extract(office.upload(corpus.pptx_file(tmp_path)))

    assert facts.page_count == 2
    pages = json.loads(office.text(facts.pages_location))
    assert [(page["number"], page["source"]) for page in pages] == [(1, "text"), (2, "text")]


def test_a_workbook_past_its_cell_budget_is_cut_with_a_warning(tmp_path: Path) -> None:
    office = Office(ProcessingOptions(spreadsheet_max_cells=300))

    facts = office.extract(office.upload(corpus.large_xlsx(tmp_path, rows=1000)))

    assert facts.details == {"sheets": 1, "rows": 100, "truncated": True}
    assert facts.warnings == ["truncated"]


def test_an_email_named_eml_is_an_email_though_libmagic_says_text(
    office: Office, tmp_path: Path
) -> None:
    path = tmp_path / "short.eml"
    path.write_bytes(b"Subject: Lunch\r\nFrom: ada@example.com\r\n\r\nAt noon?\r\n")

    inspection = office.inspect(office.upload(path))

    assert (inspection.mime_type, inspection.kind) == ("message/rfc822", "email")


# Hostile documents: each fails in the extract step, once, with its reason.
HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zip bomb": (corpus.zip_bomb_docx_file, "too_large"),
    "lying member": (corpus.lying_member_docx, "corrupt"),
    "billion laughs": (corpus.billion_laughs_docx, "corrupt"),
    "external entity": (corpus.external_entity_docx, "corrupt"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_document_fails_permanently_with_its_reason(
    name: str, office: Office, tmp_path: Path
) -> None:
    make, reason = HOSTILE[name]
    request = office.upload(make(tmp_path))

    with pytest.raises(ApplicationError) as failed:
        office.extract(request)

    assert failed.value.type == reason
    assert failed.value.non_retryable


def test_the_archive_limits_are_the_deployments(tmp_path: Path) -> None:
    office = Office(ProcessingOptions(archive=ArchiveLimits(max_members=5)))

    with pytest.raises(ApplicationError) as failed:
        office.extract(office.upload(corpus.docx_file(tmp_path)))

    assert failed.value.type == "too_large"
    assert "more than the 5 allowed" in failed.value.message


# Refused at inspection: legacy formats with what to do, encrypted ones as such.
@pytest.mark.parametrize(
    ("make", "reason", "words"),
    [
        (corpus.legacy_doc, "unsupported_type", "save it as .docx"),
        (corpus.legacy_xls, "unsupported_type", "save it as .xlsx"),
        (corpus.legacy_ppt, "unsupported_type", "save it as .pptx"),
        (corpus.ole_header_only, "unsupported_type", "Office 97-2003"),
        (corpus.encrypted_docx, "encrypted", "password"),
    ],
)
def test_legacy_and_encrypted_office_files_are_refused_at_inspection(
    make: Callable[[Path], Path], reason: str, words: str, office: Office, tmp_path: Path
) -> None:
    with pytest.raises(ApplicationError) as failed:
        office.inspect(office.upload(make(tmp_path)))

    assert failed.value.type == reason
    assert failed.value.non_retryable
    assert words in failed.value.message
