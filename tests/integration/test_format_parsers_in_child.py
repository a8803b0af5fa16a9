"""The office, web and e-mail parsers as they run in production: in the limited child
process (``run_limited``), and through their extractors into a local blob store. What
crosses the pipe is what the parser yields in-process, every hostile document ends as
``UnprocessableContent`` with its reason, raised by the child's own checks, and no child
is left behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from application.processing import ContentKind, FailureReason, UnprocessableContent
from infrastructure.blobstore import LocalBlobStore
from infrastructure.processing.extraction import ExtractionJob, extract
from infrastructure.processing.formats.archive import ArchiveLimits
from infrastructure.processing.formats.docx import parse_docx
from infrastructure.processing.formats.eml import parse_eml
from infrastructure.processing.formats.html import parse_html
from infrastructure.processing.formats.odf import parse_odf
from infrastructure.processing.formats.pptx import parse_pptx
from infrastructure.processing.formats.xlsx import parse_xlsx
from infrastructure.processing.limits import MIB, Json, ProcessLimits, run_limited
from infrastructure.processing.options import ProcessingOptions
from tests import office_corpus as corpus
from tests.blocks import read

LIMITS = ProcessLimits(cpu_seconds=30, memory_bytes=1024 * MIB, wall_seconds=60)
ARCHIVE = ArchiveLimits().to_json()
CELLS = 500_000

# Each format: its corpus file, its parser and the parser's arguments after the path.
FORMATS: dict[
    str, tuple[Callable[[Path], Path], Callable[..., Iterator[Json]], tuple[Json, ...]]
] = {
    "docx": (corpus.docx_file, parse_docx, (ARCHIVE,)),
    "xlsx": (corpus.xlsx_file, parse_xlsx, (ARCHIVE, CELLS)),
    "pptx": (corpus.pptx_file, parse_pptx, (ARCHIVE,)),
    "odt": (corpus.odt_file, parse_odf, (ARCHIVE, CELLS)),
    "ods": (corpus.ods_file, parse_odf, (ARCHIVE, CELLS)),
    "odp": (corpus.odp_file, parse_odf, (ARCHIVE, CELLS)),
    "html": (corpus.html_file, parse_html, ()),
    "eml": (corpus.eml_file, parse_eml, ()),
}

HOSTILE: dict[str, tuple[Callable[[Path], Path], FailureReason, str]] = {
    "zip bomb": (corpus.zip_bomb_docx_file, FailureReason.TOO_LARGE, "more than the 256 MiB"),
    "lying member": (corpus.lying_member_docx, FailureReason.CORRUPT, "inflates to more"),
    "billion laughs": (corpus.billion_laughs_docx, FailureReason.CORRUPT, "(DTD)"),
    "external entity": (corpus.external_entity_docx, FailureReason.CORRUPT, "(DTD)"),
    "encrypted": (corpus.encrypted_docx, FailureReason.ENCRYPTED, "password"),
    "legacy doc": (corpus.legacy_doc, FailureReason.UNSUPPORTED_TYPE, "save it as .docx"),
}


@pytest.fixture(autouse=True)
def no_child_outlives_a_test() -> Iterator[None]:
    # Servers that session fixtures started are children too, and may stay running.
    before = set(psutil.Process().children())
    yield
    assert set(psutil.Process().children()) <= before


@pytest.mark.parametrize("name", FORMATS)
def test_the_child_yields_what_the_parser_yields_in_process(name: str, tmp_path: Path) -> None:
    make, parse, args = FORMATS[name]
    path = str(make(tmp_path))

    through_the_child = read(run_limited(parse, path, *args, limits=LIMITS))

    assert through_the_child == read(parse(path, *args))
    assert through_the_child[0], "every corpus document has content"


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_docx_is_refused_in_the_child_with_its_reason(name: str, tmp_path: Path) -> None:
    make, reason, words = HOSTILE[name]
    path = str(make(tmp_path))

    with pytest.raises(UnprocessableContent) as refused:
        list(run_limited(parse_docx, path, ARCHIVE, limits=LIMITS))

    assert refused.value.reason is reason
    assert words in refused.value.message


KINDS = {
    "docx": (ContentKind.DOCX, "| Item | Cost |"),
    "xlsx": (ContentKind.XLSX, "| Name | Team |"),
    "pptx": (ContentKind.PPTX, "<!-- page 2 -->"),
    "odt": (ContentKind.ODF, "## Next steps"),
    "ods": (ContentKind.ODF, "## Staff"),
    "odp": (ContentKind.ODF, "## Plans"),
    "html": (ContentKind.HTML, "# Café menu"),
    "eml": (ContentKind.EMAIL, "## Attachments"),
}


@pytest.mark.parametrize("name", FORMATS)
def test_the_extractor_writes_a_documents_outputs_to_a_local_blob_store(
    name: str, tmp_path: Path
) -> None:
    make, _, _ = FORMATS[name]
    kind, line = KINDS[name]
    store = LocalBlobStore(tmp_path / "blobs")
    beats: list[object] = []

    with make(tmp_path).open("rb") as source:
        facts = extract(
            kind,
            ExtractionJob(
                source=source,
                mime_type="application/octet-stream",
                blob_store=store,
                options=ProcessingOptions(),
                resume_from=None,
                heartbeat=lambda *details: beats.extend(details),
            ),
        )

    assert facts.kind == kind.value
    assert facts.markdown_location is not None
    with store.open(facts.markdown_location) as markdown:
        assert line in markdown.read().decode("utf-8").splitlines()
    stored = {entry.location for entry in store.entries() if not entry.temporary}
    assert stored == {
        *facts.text_locations,
        facts.markdown_location,
        facts.chunks_location,
        *([facts.pages_location] if facts.pages_location else []),
    }
